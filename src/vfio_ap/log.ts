// Kernel messages of the driver: WARN()/WARN_ONCE() splats for hardware states
// the driver does not expect (logged, not treated as model bugs: the hardware can
// legitimately get there), and the debug-feature (s390dbf) trace.
import { KERN_WARNING } from '../kernel/printk.js';
import type { MatrixDev } from './private.js';

/** WARN(true, ...) in a vfio_ap function: the "WARNING:" line and the message. */
export function vfio_ap_warn(md: MatrixDev, fn: string, text: string): void {
  const k = md.k;
  const t = k.current;
  k.printk(KERN_WARNING, `WARNING: CPU: 0 PID: ${t?.pid ?? 0} at drivers/s390/crypto/vfio_ap_ops.c ${fn}\n${text}`);
}

/** VFIO_AP_DBF_WARN(): the s390 debug feature; kept in memory, not in dmesg. */
export function vfio_ap_dbf(md: MatrixDev, text: string): void {
  const log = md.dbfLog;
  if (log.length > 1000) log.splice(0, 500);
  log.push(text);
}
