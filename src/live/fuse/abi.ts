// The FUSE kernel protocol (include/uapi/linux/fuse.h), the subset apsim speaks:
// opcodes, flags and the byte layout of the structures it reads and writes. All
// integers are little-endian host order (x86-64, s390x would need BE: Node's
// Buffer methods are explicit, see `le` in session.ts).

export const FUSE_KERNEL_VERSION = 7;
/** The minor version apsim implements (7.31: max_pages, FOPEN_NOFLUSH is 7.32 but harmless). */
export const FUSE_KERNEL_MINOR_VERSION = 31;
export const FUSE_ROOT_ID = 1;

export const Opcode = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  SYMLINK: 6,
  MKNOD: 8,
  MKDIR: 9,
  UNLINK: 10,
  RMDIR: 11,
  RENAME: 12,
  LINK: 13,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  SETXATTR: 21,
  GETXATTR: 22,
  LISTXATTR: 23,
  REMOVEXATTR: 24,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  GETLK: 31,
  SETLK: 32,
  SETLKW: 33,
  ACCESS: 34,
  CREATE: 35,
  INTERRUPT: 36,
  BMAP: 37,
  DESTROY: 38,
  IOCTL: 39,
  POLL: 40,
  BATCH_FORGET: 42,
  FALLOCATE: 43,
  READDIRPLUS: 44,
  RENAME2: 45,
  LSEEK: 46,
  COPY_FILE_RANGE: 47,
  SYNCFS: 50,
  TMPFILE: 51,
} as const;

export const OPCODE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(Opcode).map(([k, v]) => [v, k]));

// fuse_init flags
export const FUSE_ASYNC_READ = 1 << 0;
export const FUSE_ATOMIC_O_TRUNC = 1 << 3;
export const FUSE_BIG_WRITES = 1 << 5;
export const FUSE_PARALLEL_DIROPS = 1 << 18;
export const FUSE_MAX_PAGES = 1 << 22;

// open_out flags
export const FOPEN_DIRECT_IO = 1 << 0;
export const FOPEN_NONSEEKABLE = 1 << 2;
export const FOPEN_NOFLUSH = 1 << 5;

// setattr valid bits
export const FATTR_MODE = 1 << 0;
export const FATTR_UID = 1 << 1;
export const FATTR_GID = 1 << 2;
export const FATTR_SIZE = 1 << 3;

/** sizeof(struct fuse_in_header) */
export const IN_HEADER = 40;
/** sizeof(struct fuse_out_header) */
export const OUT_HEADER = 16;
/** sizeof(struct fuse_attr) */
export const ATTR_SIZE = 88;
/** sizeof(struct fuse_entry_out) */
export const ENTRY_OUT = 40 + ATTR_SIZE;
/** sizeof(struct fuse_attr_out) */
export const ATTR_OUT = 16 + ATTR_SIZE;
/** sizeof(struct fuse_init_out) */
export const INIT_OUT = 64;
/** sizeof(struct fuse_statfs_out) */
export const STATFS_OUT = 80;
/** offsetof(struct fuse_dirent, name) */
export const DIRENT_NAME = 24;
/** Largest write we accept in one request (max_pages * 4096). */
export const MAX_WRITE = 128 * 1024;
export const MAX_PAGES = MAX_WRITE / 4096;
/** The /dev/fuse read buffer: header + write_in + MAX_WRITE, rounded generously. */
export const READ_BUFFER = MAX_WRITE + 4096;

// dirent types (DT_*)
export const DT_DIR = 4;
export const DT_REG = 8;
export const DT_LNK = 10;

// open(2) flags
export const O_ACCMODE = 3;
export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
