#pragma once
#include <png.h>
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// libpng reports errors by longjmp, which must never cross a Swift frame. The helpers below keep setjmp, every
// libpng call and the longjmp inside one C function: the error callback records the message and jumps back to the
// setjmp in that same function, which frees everything and returns -1 with the message.

typedef struct { jmp_buf jump; char message[200]; char warning[200]; } adaptir_png_error_state;

static void adaptir_png_on_error(png_structp png, png_const_charp msg) {
    adaptir_png_error_state *state = (adaptir_png_error_state *)png_get_error_ptr(png);
    snprintf(state->message, sizeof state->message, "%s", msg ? msg : "libpng error");
    longjmp(state->jump, 1);
}

/// Warnings do not stop the read; the last one is kept, as libpng explains some errors only in a warning before
/// (e.g. "Image width exceeds user limit in IHDR" before "Invalid IHDR data").
static void adaptir_png_on_warning(png_structp png, png_const_charp msg) {
    adaptir_png_error_state *state = (adaptir_png_error_state *)png_get_error_ptr(png);
    snprintf(state->warning, sizeof state->warning, "%s", msg ? msg : "");
}

/// Reads the PNG at `path` as 8-bit RGB (HWC, rows top to bottom). Conversions, without any gamma or colour
/// management: palette -> RGB; gray (1/2/4/8/16 bit) -> replicated to R = G = B; 16-bit -> high byte (libpng's
/// png_set_strip_16, as OpenCV); alpha and tRNS -> dropped (no compositing, as Pillow's convert('RGB')).
///
/// Two calls, so that the caller allocates the pixels once, after the size is known and checked: with `pixels` NULL
/// only the header is read and `*width`, `*height` are set; with `pixels` pointing to `*width * *height * 3` bytes
/// the image is decoded into it, and a size other than the given one is an error. `max_pixels` > 0 refuses a header
/// whose width * height exceeds it (libpng's user limits refuse either side above it while reading IHDR).
/// Returns 0, or -1 with a one-line `message`.
static int adaptir_png_read_rgb(const char *path, unsigned char *pixels, unsigned *width, unsigned *height,
                                unsigned long long max_pixels, char *message, size_t message_size) {
    adaptir_png_error_state state;
    state.message[0] = 0; state.warning[0] = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) { snprintf(message, message_size, "cannot open: %s", strerror(errno)); return -1; }
    unsigned char signature[8];
    if (fread(signature, 1, 8, fp) != 8 || png_sig_cmp(signature, 0, 8) != 0) {
        fclose(fp); snprintf(message, message_size, "not a PNG file (bad signature)"); return -1;
    }
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &state, adaptir_png_on_error,
                                             adaptir_png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        if (png) png_destroy_read_struct(&png, NULL, NULL);
        fclose(fp); snprintf(message, message_size, "out of memory"); return -1;
    }
    png_bytep *volatile rows = NULL;
    if (setjmp(state.jump)) {
        png_destroy_read_struct(&png, &info, NULL);
        free(rows); fclose(fp);
        if (strstr(state.warning, "user limit"))  // png_set_user_limits below: one side alone exceeds max_pixels
            snprintf(message, message_size, "PNG header: %s (the limit is %llu pixels, --max-pixels)", state.warning,
                     max_pixels);
        else
            snprintf(message, message_size, "corrupt PNG: %s", state.message);
        return -1;
    }
    png_init_io(png, fp);
    png_set_sig_bytes(png, 8);
    if (max_pixels > 0) {
        png_uint_32 side = max_pixels < 0x7fffffffULL ? (png_uint_32)max_pixels : 0x7fffffffU;
        png_set_user_limits(png, side, side);
    }
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    unsigned long long n = (unsigned long long)w * h;
    if (max_pixels > 0 && n > max_pixels) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(fp);
        snprintf(message, message_size, "PNG header claims %ux%u = %llu pixels, more than the limit of %llu "
                 "(--max-pixels)", (unsigned)w, (unsigned)h, n, max_pixels);
        return -1;
    }
    if (!pixels) {
        *width = w; *height = h;
        png_destroy_read_struct(&png, &info, NULL);
        fclose(fp);
        return 0;
    }
    if (w != *width || h != *height) {
        snprintf(state.message, sizeof state.message, "size %ux%u differs from the first read's %ux%u",
                 (unsigned)w, (unsigned)h, *width, *height);
        longjmp(state.jump, 1);
    }
    int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    if (depth == 16) png_set_strip_16(png);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    png_set_strip_alpha(png);  // also drops the alpha that palette expansion makes from a tRNS chunk
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8 || rowbytes != (size_t)w * 3) {
        snprintf(state.message, sizeof state.message, "unsupported layout after conversion (%d channels)",
                 (int)png_get_channels(png, info));
        longjmp(state.jump, 1);
    }
    rows = (png_bytep *)malloc(sizeof(png_bytep) * (h + 1));
    if (!rows) { snprintf(state.message, sizeof state.message, "out of memory"); longjmp(state.jump, 1); }
    for (png_uint_32 y = 0; y < h; y++) rows[y] = pixels + (size_t)y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);  // checks the chunks after the image data too (a truncated file fails here)
    png_destroy_read_struct(&png, &info, NULL);
    free(rows); fclose(fp);
    return 0;
}

/// Writes 8-bit RGB (HWC) as a PNG at `path` (zlib level 6, no filters beyond libpng's defaults, no gamma or colour
/// chunks). Returns 0, or -1 with a one-line `message`; the file may then be partial (the caller writes to a
/// temporary name and removes it).
static int adaptir_png_write_rgb(const char *path, const unsigned char *pixels, unsigned width, unsigned height,
                                 char *message, size_t message_size) {
    adaptir_png_error_state state;
    state.message[0] = 0; state.warning[0] = 0;
    FILE *fp = fopen(path, "wb");
    if (!fp) { snprintf(message, message_size, "cannot create: %s", strerror(errno)); return -1; }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &state, adaptir_png_on_error,
                                              adaptir_png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        if (png) png_destroy_write_struct(&png, NULL);
        fclose(fp); snprintf(message, message_size, "out of memory"); return -1;
    }
    if (setjmp(state.jump)) {
        png_destroy_write_struct(&png, &info);
        fclose(fp);
        snprintf(message, message_size, "PNG write failed: %s", state.message);
        return -1;
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, width, height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(png, 6);
    png_write_info(png, info);
    for (unsigned y = 0; y < height; y++) png_write_row(png, (png_const_bytep)(pixels + (size_t)y * width * 3));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (fflush(fp) != 0 || ferror(fp)) {
        fclose(fp); snprintf(message, message_size, "write error: %s", strerror(errno)); return -1;
    }
    if (fclose(fp) != 0) { snprintf(message, message_size, "close failed: %s", strerror(errno)); return -1; }
    return 0;
}
