#pragma once
#include <mpi.h>
// OpenMPI's handles are casts of addresses of globals, which Swift cannot import: expose them as accessors.
static inline MPI_Comm     swmpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm     swmpi_comm_null(void)  { return MPI_COMM_NULL; }
static inline MPI_Comm     swmpi_comm_self(void)  { return MPI_COMM_SELF; }
static inline MPI_Datatype swmpi_float(void)      { return MPI_FLOAT; }
static inline MPI_Datatype swmpi_double(void)     { return MPI_DOUBLE; }
static inline MPI_Datatype swmpi_int64(void)      { return MPI_INT64_T; }
static inline MPI_Datatype swmpi_int32(void)      { return MPI_INT32_T; }
static inline MPI_Datatype swmpi_uint64(void)     { return MPI_UINT64_T; }
static inline MPI_Datatype swmpi_byte(void)       { return MPI_BYTE; }
static inline MPI_Op       swmpi_sum(void)        { return MPI_SUM; }
static inline MPI_Op       swmpi_max(void)        { return MPI_MAX; }
static inline MPI_Op       swmpi_min(void)        { return MPI_MIN; }
static inline void*        swmpi_in_place(void)   { return MPI_IN_PLACE; }
static inline MPI_Errhandler swmpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline MPI_Info     swmpi_info_null(void)  { return MPI_INFO_NULL; }
static inline int          swmpi_comm_type_shared(void) { return MPI_COMM_TYPE_SHARED; }
static inline MPI_Datatype swmpi_uint8(void)      { return MPI_UINT8_T; }
static inline MPI_Status*  swmpi_status_ignore(void)   { return MPI_STATUS_IGNORE; }
static inline MPI_Status*  swmpi_statuses_ignore(void) { return MPI_STATUSES_IGNORE; }
