#pragma once
#include <stdio.h>
#include <errno.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

// libjpeg's error_exit must not return, and a longjmp must never cross a Swift frame. The helpers below keep setjmp,
// every libjpeg call and the longjmp inside one C function: error_exit formats the message and jumps back to the
// setjmp in that same function, which cleans up and returns -1 with the message.

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} adaptir_jpeg_error_state;

static void adaptir_jpeg_on_error(j_common_ptr cinfo) {
    adaptir_jpeg_error_state *state = (adaptir_jpeg_error_state *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, state->message);
    longjmp(state->jump, 1);
}

/// Every warning about the data is an error: libjpeg would otherwise carry on and fill what it could not decode with
/// grey (a file cut mid-scan, ending in an EOI marker, gives JWRN_HIT_MARKER; a cut without one, JWRN_JPEG_EOF; bad
/// Huffman codes, extraneous bytes, ...). Only the two warnings about metadata that does not change the pixels (an
/// unknown JFIF revision, an unknown Adobe transform code) are ignored, as are trace messages (level > 0).
static void adaptir_jpeg_on_message(j_common_ptr cinfo, int level) {
    if (level < 0 && cinfo->err->msg_code != JWRN_JFIF_MAJOR && cinfo->err->msg_code != JWRN_ADOBE_XFORM) {
        adaptir_jpeg_error_state *state = (adaptir_jpeg_error_state *)cinfo->err;
        (*cinfo->err->format_message)(cinfo, state->message);
        longjmp(state->jump, 1);
    }
}

/// Decodes a JPEG held in memory to 8-bit RGB (HWC) with libjpeg's defaults (islow DCT, fancy (triangle) chroma
/// upsampling, as OpenCV and Pillow); grayscale becomes R = G = B, CMYK/YCCK is refused.
///
/// Two calls, so that the caller allocates the pixels once, after the size is known and checked: with `pixels` NULL
/// only the header is read and `*width`, `*height` are set (nothing is decoded or allocated for the image); with
/// `pixels` pointing to `*width * *height * 3` bytes the image is decoded into it, and a size other than the given
/// one is an error. `max_pixels` > 0 refuses a header whose width * height exceeds it, before libjpeg allocates
/// anything for the image. Returns 0, or -1 with a one-line `message`.
static int adaptir_jpeg_decode_rgb(const unsigned char *data, unsigned long size, unsigned char *pixels,
                                   unsigned *width, unsigned *height, unsigned long long max_pixels,
                                   char *message, size_t message_size) {
    struct jpeg_decompress_struct cinfo;
    adaptir_jpeg_error_state state;
    state.message[0] = 0;
    cinfo.err = jpeg_std_error(&state.base);
    state.base.error_exit = adaptir_jpeg_on_error;
    state.base.emit_message = adaptir_jpeg_on_message;
    if (setjmp(state.jump)) {
        jpeg_destroy_decompress(&cinfo);
        const char *lead = "Corrupt JPEG data: ";  // the prefix of libjpeg's warnings about the data
        if (strncmp(state.message, lead, strlen(lead)) == 0)
            snprintf(message, message_size, "corrupt JPEG data: %s", state.message + strlen(lead));
        else
            snprintf(message, message_size, "corrupt JPEG: %s", state.message);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, size);
    jpeg_read_header(&cinfo, TRUE);
    unsigned long long n = (unsigned long long)cinfo.image_width * cinfo.image_height;
    if (max_pixels > 0 && n > max_pixels) {
        jpeg_destroy_decompress(&cinfo);
        snprintf(message, message_size, "JPEG header claims %ux%u = %llu pixels, more than the limit of %llu "
                 "(--max-pixels)", cinfo.image_width, cinfo.image_height, n, max_pixels);
        return -1;
    }
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        snprintf(state.message, sizeof state.message, "CMYK/YCCK JPEG is not supported");
        longjmp(state.jump, 1);
    }
    if (!pixels) {
        *width = cinfo.image_width; *height = cinfo.image_height;
        jpeg_destroy_decompress(&cinfo);
        return 0;
    }
    cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_width != *width || cinfo.output_height != *height || cinfo.output_components != 3) {
        snprintf(state.message, sizeof state.message, "decoded size %ux%u differs from the header's %ux%u",
                 cinfo.output_width, cinfo.output_height, *width, *height);
        longjmp(state.jump, 1);
    }
    size_t stride = (size_t)cinfo.output_width * 3;
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = pixels + (size_t)cinfo.output_scanline * stride;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return 0;
}

/// Encodes 8-bit RGB (HWC) as a baseline JPEG at `quality` (1...100) with libjpeg's defaults, as OpenCV's
/// imencode: standard tables scaled by jpeg_set_quality(q, force_baseline), YCbCr 4:2:0, islow DCT, no optimised
/// Huffman tables. Output in a malloc'ed buffer `*out` of `*out_size` bytes (free with `free`).
static int adaptir_jpeg_encode_rgb(const unsigned char *pixels, unsigned width, unsigned height, int quality,
                                   unsigned char **out, unsigned long *out_size, char *message, size_t message_size) {
    struct jpeg_compress_struct cinfo;
    adaptir_jpeg_error_state state;
    unsigned char *mem = NULL;
    unsigned long mem_size = 0;
    *out = NULL; *out_size = 0;
    state.message[0] = 0;
    cinfo.err = jpeg_std_error(&state.base);
    state.base.error_exit = adaptir_jpeg_on_error;
    if (setjmp(state.jump)) {
        jpeg_destroy_compress(&cinfo);
        free(mem);  // jpeg_mem_dest's buffer is not freed by jpeg_destroy_compress
        snprintf(message, message_size, "JPEG encode failed: %s", state.message);
        return -1;
    }
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, &mem, &mem_size);
    cinfo.image_width = width; cinfo.image_height = height;
    cinfo.input_components = 3; cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)cinfo.next_scanline * width * 3);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    *out = mem; *out_size = mem_size;
    return 0;
}
