/* CMPI — Open MPI for Swift: mpi.h, and its predefined handles as functions.
 * SPDX-License-Identifier: MIT
 *
 * Open MPI spells MPI_COMM_WORLD, MPI_FLOAT, MPI_REQUEST_NULL ... as casts of
 * the addresses of library globals, which Swift cannot import as macros; each
 * function below returns one of them. Only Sources/GradKit/Distributed/ uses
 * this module. */
#ifndef CMPI_H
#define CMPI_H

#include <mpi.h>

static inline MPI_Comm cmpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm cmpi_comm_null(void) { return MPI_COMM_NULL; }
static inline MPI_Request cmpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Datatype cmpi_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype cmpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype cmpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Info cmpi_info_null(void) { return MPI_INFO_NULL; }
static inline MPI_Errhandler cmpi_errors_return(void) { return MPI_ERRORS_RETURN; }

#endif
