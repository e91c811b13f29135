/* flagos communication library: collectives shaped like NCCL over every backend.
 *
 * Usage (as with NCCL): rank 0 calls flagosCommGetUniqueId and shares the id (under `flagos launch`
 * every rank may call it and gets the same id from the environment); each rank calls
 * flagosCommInitRank(&comm, nranks, id, rank); collectives take (send, recv, count, dtype, [op],
 * [root], comm, stream) where stream is the buffer's backend stream (null on the CPU; a cudaStream_t
 * for CUDA buffers, whose device flagosCommInitRank makes current on the calling thread).
 * Ranks on different kinds of devices (or a split forced with FLAGOS_COMM_CLUSTERS /
 * FLAGOS_COMM_SPLIT) run every call hierarchically through host staging (src/comm/README.md).
 * Every function returns a flagosResult_t; flagosGetLastError gives the message of the last failure
 * on this thread (it names the call, the rank and the offending values). No C++ exception crosses
 * this boundary. */
#ifndef FLAGOS_COMM_H_
#define FLAGOS_COMM_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FLAGOS_COMM_VERSION 1
#define FLAGOS_UNIQUE_ID_BYTES 128

typedef struct flagosComm* flagosComm_t;
typedef struct {
  char internal[FLAGOS_UNIQUE_ID_BYTES];
} flagosUniqueId;

typedef enum {
  flagosSuccess = 0,
  flagosUnhandledDeviceError = 1, /* the backend (driver, runtime) failed */
  flagosSystemError = 2,          /* sockets, processes, the OS */
  flagosInternalError = 3,        /* a bug in flagos or the transport library */
  flagosInvalidArgument = 4,      /* bad pointer, count, dtype, op, root, peer, or a wrong/stale unique id */
  flagosInvalidUsage = 5,         /* calls in a wrong order, ranks disagreeing on a collective */
  flagosRemoteError = 6,          /* another rank failed or went away */
  flagosInProgress = 7,
  flagosTimeout = 8,              /* nothing happened within the configured timeout */
  flagosNotSupported = 9,
  flagosNumResults = 10
} flagosResult_t;

typedef enum {
  flagosInt8 = 0,
  flagosUint8 = 1,
  flagosInt32 = 2,
  flagosUint32 = 3,
  flagosInt64 = 4,
  flagosUint64 = 5,
  flagosFloat16 = 6,
  flagosFloat32 = 7,
  flagosFloat64 = 8,
  flagosBfloat16 = 9,
  flagosNumTypes = 10
} flagosDataType_t;

/* Integer avg is the sum divided by nranks, truncated toward zero. f16/bf16 reduce in f32. */
typedef enum { flagosSum = 0, flagosProd = 1, flagosMax = 2, flagosMin = 3, flagosAvg = 4, flagosNumOps = 5 } flagosRedOp_t;

/* Optional settings for flagosCommInitRankConfig; fill with FLAGOS_CONFIG_INITIALIZER. */
typedef struct {
  size_t size;            /* sizeof(flagosConfig_t) */
  unsigned int magic;     /* FLAGOS_CONFIG_MAGIC */
  int version;            /* FLAGOS_COMM_VERSION */
  const char* device;     /* "cpu", "cuda:1", ...; null: env FLAGOS_COMM_DEVICE, else "cpu" */
  int64_t timeout_ms;     /* bootstrap and per-call timeout; <= 0: env FLAGOS_COMM_TIMEOUT_MS, else 300000 */
  int check_args;         /* ranks compare each collective's (call, dtype, op, count, root) first:
                             1: always; 0: never; -1: env FLAGOS_COMM_CHECK (1/0), unset: where it is
                             one small host exchange (host and heterogeneous modes, not NCCL alone) */
} flagosConfig_t;
#define FLAGOS_CONFIG_MAGIC 0xf1a90c0du
#define FLAGOS_CONFIG_INITIALIZER {sizeof(flagosConfig_t), FLAGOS_CONFIG_MAGIC, FLAGOS_COMM_VERSION, NULL, 0, -1}

/* ---- library, errors ---- */
flagosResult_t flagosGetVersion(int* version);
const char* flagosGetErrorString(flagosResult_t result);
/* The message of the last failed call on this thread ("" if none). */
const char* flagosGetLastError(flagosComm_t comm);

/* ---- communicators ---- */
/* Under `flagos launch` (env FLAGOS_COMM_ADDR=host:port and FLAGOS_COMM_MAGIC) every rank gets the same
 * id. Otherwise a fresh id: this process listens on a new port of the address FLAGOS_COMM_ADDR pins
 * (or this host's first non-loopback IPv4 address) and picks a random magic. */
flagosResult_t flagosCommGetUniqueId(flagosUniqueId* uniqueId);
flagosResult_t flagosCommInitRank(flagosComm_t* comm, int nranks, flagosUniqueId commId, int rank);
flagosResult_t flagosCommInitRankConfig(flagosComm_t* comm, int nranks, flagosUniqueId commId, int rank,
                                        const flagosConfig_t* config);
/* Waits for outstanding work, then frees. */
flagosResult_t flagosCommDestroy(flagosComm_t comm);
/* Frees without waiting for other ranks; the communicator's pending operations are abandoned. */
flagosResult_t flagosCommAbort(flagosComm_t comm);
/* flagosSuccess, or the error that broke the communicator (e.g. a timeout in an earlier call). */
flagosResult_t flagosCommGetAsyncError(flagosComm_t comm, flagosResult_t* asyncError);
flagosResult_t flagosCommCount(const flagosComm_t comm, int* count);
flagosResult_t flagosCommUserRank(const flagosComm_t comm, int* rank);
/* This rank's device, "cpu:0" or "cuda:1". */
flagosResult_t flagosCommDevice(const flagosComm_t comm, char* buf, size_t bufsize);
/* "rank 1: cpu:0 on host node3 (pid 1234), adaptor host-mpi, caps ..." as all-gathered at init. */
flagosResult_t flagosCommRankInfo(const flagosComm_t comm, int rank, char* buf, size_t bufsize);

/* ---- collectives (in place: recvbuff == sendbuff, or sendbuff == recvbuff + rank * count for the
 * gathering ones, as in NCCL) ---- */
flagosResult_t flagosAllReduce(const void* sendbuff, void* recvbuff, size_t count, flagosDataType_t datatype,
                               flagosRedOp_t op, flagosComm_t comm, void* stream);
flagosResult_t flagosBroadcast(const void* sendbuff, void* recvbuff, size_t count, flagosDataType_t datatype,
                               int root, flagosComm_t comm, void* stream);
flagosResult_t flagosReduce(const void* sendbuff, void* recvbuff, size_t count, flagosDataType_t datatype,
                            flagosRedOp_t op, int root, flagosComm_t comm, void* stream);
/* recvbuff holds nranks * sendcount elements, rank r's at offset r * sendcount. */
flagosResult_t flagosAllGather(const void* sendbuff, void* recvbuff, size_t sendcount, flagosDataType_t datatype,
                               flagosComm_t comm, void* stream);
/* sendbuff holds nranks * recvcount elements; rank r gets the reduction of block r. */
flagosResult_t flagosReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount,
                                   flagosDataType_t datatype, flagosRedOp_t op, flagosComm_t comm, void* stream);
/* Block p (count elements) of sendbuff goes to rank p, landing at block r of its recvbuff. */
flagosResult_t flagosAlltoAll(const void* sendbuff, void* recvbuff, size_t count, flagosDataType_t datatype,
                              flagosComm_t comm, void* stream);
/* Counts and displacements in elements, one per rank. */
flagosResult_t flagosAlltoAllv(const void* sendbuff, const size_t sendcounts[], const size_t sdispls[],
                               void* recvbuff, const size_t recvcounts[], const size_t rdispls[],
                               flagosDataType_t datatype, flagosComm_t comm, void* stream);
flagosResult_t flagosGather(const void* sendbuff, void* recvbuff, size_t sendcount, flagosDataType_t datatype,
                            int root, flagosComm_t comm, void* stream);
flagosResult_t flagosScatter(const void* sendbuff, void* recvbuff, size_t recvcount, flagosDataType_t datatype,
                             int root, flagosComm_t comm, void* stream);
flagosResult_t flagosBarrier(flagosComm_t comm, void* stream);

/* ---- point to point ---- */
flagosResult_t flagosSend(const void* sendbuff, size_t count, flagosDataType_t datatype, int peer,
                          flagosComm_t comm, void* stream);
flagosResult_t flagosRecv(void* recvbuff, size_t count, flagosDataType_t datatype, int peer, flagosComm_t comm,
                          void* stream);

/* ---- groups: calls between start and end are issued together at the end (pairs of Send/Recv that
 * would deadlock one at a time, several collectives at once) ---- */
flagosResult_t flagosGroupStart(void);
flagosResult_t flagosGroupEnd(void);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif  /* FLAGOS_COMM_H_ */
