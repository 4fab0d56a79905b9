// Linux errno numbers (asm-generic/errno-base.h + errno.h, as on s390x and x86-64)
// with the names the kernel uses and the strerror() texts of glibc, because the FUSE
// mount returns these numbers to writing processes and shells print these texts.

export interface ErrnoInfo {
  readonly errno: number;
  readonly name: string;
  readonly text: string;
}

const TABLE: ReadonlyArray<readonly [number, string, string]> = [
  [1, 'EPERM', 'Operation not permitted'],
  [2, 'ENOENT', 'No such file or directory'],
  [3, 'ESRCH', 'No such process'],
  [4, 'EINTR', 'Interrupted system call'],
  [5, 'EIO', 'Input/output error'],
  [6, 'ENXIO', 'No such device or address'],
  [7, 'E2BIG', 'Argument list too long'],
  [8, 'ENOEXEC', 'Exec format error'],
  [9, 'EBADF', 'Bad file descriptor'],
  [10, 'ECHILD', 'No child processes'],
  [11, 'EAGAIN', 'Resource temporarily unavailable'],
  [12, 'ENOMEM', 'Cannot allocate memory'],
  [13, 'EACCES', 'Permission denied'],
  [14, 'EFAULT', 'Bad address'],
  [15, 'ENOTBLK', 'Block device required'],
  [16, 'EBUSY', 'Device or resource busy'],
  [17, 'EEXIST', 'File exists'],
  [18, 'EXDEV', 'Invalid cross-device link'],
  [19, 'ENODEV', 'No such device'],
  [20, 'ENOTDIR', 'Not a directory'],
  [21, 'EISDIR', 'Is a directory'],
  [22, 'EINVAL', 'Invalid argument'],
  [23, 'ENFILE', 'Too many open files in system'],
  [24, 'EMFILE', 'Too many open files'],
  [25, 'ENOTTY', 'Inappropriate ioctl for device'],
  [26, 'ETXTBSY', 'Text file busy'],
  [27, 'EFBIG', 'File too large'],
  [28, 'ENOSPC', 'No space left on device'],
  [29, 'ESPIPE', 'Illegal seek'],
  [30, 'EROFS', 'Read-only file system'],
  [31, 'EMLINK', 'Too many links'],
  [32, 'EPIPE', 'Broken pipe'],
  [33, 'EDOM', 'Numerical argument out of domain'],
  [34, 'ERANGE', 'Numerical result out of range'],
  [35, 'EDEADLK', 'Resource deadlock avoided'],
  [36, 'ENAMETOOLONG', 'File name too long'],
  [37, 'ENOLCK', 'No locks available'],
  [38, 'ENOSYS', 'Function not implemented'],
  [39, 'ENOTEMPTY', 'Directory not empty'],
  [40, 'ELOOP', 'Too many levels of symbolic links'],
  [42, 'ENOMSG', 'No message of desired type'],
  [43, 'EIDRM', 'Identifier removed'],
  [61, 'ENODATA', 'No data available'],
  [62, 'ETIME', 'Timer expired'],
  [67, 'ENOLINK', 'Link has been severed'],
  [71, 'EPROTO', 'Protocol error'],
  [74, 'EBADMSG', 'Bad message'],
  [75, 'EOVERFLOW', 'Value too large for defined data type'],
  [84, 'EILSEQ', 'Invalid or incomplete multibyte or wide character'],
  [87, 'EUSERS', 'Too many users'],
  [88, 'ENOTSOCK', 'Socket operation on non-socket'],
  [95, 'EOPNOTSUPP', 'Operation not supported'],
  [98, 'EADDRINUSE', 'Address already in use'],
  [99, 'EADDRNOTAVAIL', 'Cannot assign requested address'],
  [103, 'ECONNABORTED', 'Software caused connection abort'],
  [104, 'ECONNRESET', 'Connection reset by peer'],
  [105, 'ENOBUFS', 'No buffer space available'],
  [110, 'ETIMEDOUT', 'Connection timed out'],
  [111, 'ECONNREFUSED', 'Connection refused'],
  [114, 'EALREADY', 'Operation already in progress'],
  [115, 'EINPROGRESS', 'Operation now in progress'],
  [116, 'ESTALE', 'Stale file handle'],
  [121, 'EREMOTEIO', 'Remote I/O error'],
  [122, 'EDQUOT', 'Disk quota exceeded'],
  [125, 'ECANCELED', 'Operation canceled'],
  [130, 'EOWNERDEAD', 'Owner died'],
  [131, 'ENOTRECOVERABLE', 'State not recoverable'],
  // Kernel-internal codes that never reach userspace under these names but do show
  // up in driver return values and dmesg.
  [512, 'ERESTARTSYS', 'Unknown error 512'],
  [524, 'ENOTSUPP', 'Unknown error 524'],
];

const byNum = new Map<number, ErrnoInfo>();
const byName = new Map<string, ErrnoInfo>();
for (const [errno, name, text] of TABLE) {
  const info = Object.freeze({ errno, name, text });
  byNum.set(errno, info);
  byName.set(name, info);
}
// Aliases the kernel headers define.
byName.set('EWOULDBLOCK', byNum.get(11)!);
byName.set('EDEADLOCK', byNum.get(35)!);
byName.set('ENOTSUP', byNum.get(95)!);

/** Errno constants by name, e.g. `E.EINVAL === 22`. */
export const E = Object.freeze(Object.fromEntries(TABLE.map(([n, name]) => [name, n]))) as Readonly<
  Record<(typeof TABLE)[number][1], number>
> & Readonly<Record<string, number>>;

export function errnoInfo(errno: number): ErrnoInfo | undefined {
  return byNum.get(Math.abs(errno));
}

export function errnoByName(name: string): ErrnoInfo | undefined {
  return byName.get(name);
}

/** glibc's strerror text; "Unknown error N" for numbers it does not know. */
export function strerror(errno: number): string {
  const n = Math.abs(errno);
  return byNum.get(n)?.text ?? `Unknown error ${n}`;
}

/** Kernel name for an errno ("EINVAL"); "E<n>" when unnamed. */
export function errnoName(errno: number): string {
  const n = Math.abs(errno);
  return byNum.get(n)?.name ?? `E${n}`;
}

/** All known errnos in ascending order. */
export function allErrnos(): ErrnoInfo[] {
  return [...byNum.values()];
}

/** An errno carried as an exception through model code (e.g. a sysfs store result). */
export class Errno extends Error {
  readonly errno: number;
  constructor(errno: number, detail?: string) {
    const n = Math.abs(errno);
    super(detail ? `${errnoName(n)}: ${detail}` : `${errnoName(n)} (${strerror(n)})`);
    this.errno = n;
    this.name = 'Errno';
  }
}
