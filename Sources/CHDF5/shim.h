#pragma once
#include <hdf5.h>
// HDF5's type and flag macros call H5open()/H5check() in comma expressions that Swift cannot import.
static inline hid_t    swh5_native_float(void)   { return H5T_NATIVE_FLOAT; }
static inline hid_t    swh5_native_double(void)  { return H5T_NATIVE_DOUBLE; }
static inline hid_t    swh5_native_int32(void)   { return H5T_NATIVE_INT32; }
static inline hid_t    swh5_native_int64(void)   { return H5T_NATIVE_INT64; }
static inline hid_t    swh5_native_uint8(void)   { return H5T_NATIVE_UINT8; }
static inline hid_t    swh5_c_s1(void)           { return H5T_C_S1; }
static inline unsigned swh5_acc_trunc(void)      { return H5F_ACC_TRUNC; }
static inline unsigned swh5_acc_excl(void)       { return H5F_ACC_EXCL; }
static inline unsigned swh5_acc_rdonly(void)     { return H5F_ACC_RDONLY; }
static inline unsigned swh5_acc_rdwr(void)       { return H5F_ACC_RDWR; }
static inline hid_t    swh5_p_default(void)      { return H5P_DEFAULT; }
static inline hid_t    swh5_p_dataset_create(void) { return H5P_DATASET_CREATE; }
static inline hid_t    swh5_p_dataset_access(void) { return H5P_DATASET_ACCESS; }
static inline hid_t    swh5_p_file_access(void)  { return H5P_FILE_ACCESS; }
static inline hid_t    swh5_p_link_create(void)  { return H5P_LINK_CREATE; }
static inline size_t   swh5_t_variable(void)     { return H5T_VARIABLE; }
static inline unsigned swh5_f_obj_all(void)     { return H5F_OBJ_ALL; }
