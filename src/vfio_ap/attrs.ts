// The sysfs attributes of a vfio_ap mdev (/sys/devices/vfio_ap/matrix/<uuid>/):
// the six assign/unassign files, ap_config, and the read-only views.
import type { AttrOps } from '../sysfs/index.js';
import type { Device } from '../base/core.js';
import type { AttributeGroup } from '../base/types.js';
import type { MatrixDev, MatrixMdev } from './private.js';
import { matrix_show, control_domains_show, ap_config_show } from './matrix.js';
import { assign_store, unassign_store, assign_control_domain_store, unassign_control_domain_store, ap_config_store } from './ops.js';

const mdevOf = (d: Device): MatrixMdev => d.driver_data as MatrixMdev;

export function vfio_ap_mdev_attr_groups(md: MatrixDev): AttributeGroup<Device>[] {
  const k = md.k;
  const wo = (name: string, store: (m: MatrixMdev, buf: string) => ReturnType<typeof assign_store>): AttrOps<Device> => ({
    name,
    mode: 0o200,
    *store(_k, d, buf) {
      return yield* store(mdevOf(d), buf);
    },
  });
  // matrix, guest_matrix and control_domains are read under mdevs_lock.
  const roLocked = (name: string, show: (m: MatrixMdev) => string): AttrOps<Device> => ({
    name,
    mode: 0o444,
    *show(_k, d) {
      yield k.mutex_lock(md.mdevs_lock);
      const s = show(mdevOf(d));
      yield k.mutex_unlock(md.mdevs_lock);
      return s;
    },
  });
  const attrs: AttrOps<Device>[] = [
    wo('assign_adapter', (m, b) => assign_store(md, m, 'apm', b)),
    wo('unassign_adapter', (m, b) => unassign_store(md, m, 'apm', b)),
    wo('assign_domain', (m, b) => assign_store(md, m, 'aqm', b)),
    wo('unassign_domain', (m, b) => unassign_store(md, m, 'aqm', b)),
    wo('assign_control_domain', (m, b) => assign_control_domain_store(md, m, b)),
    wo('unassign_control_domain', (m, b) => unassign_control_domain_store(md, m, b)),
    roLocked('control_domains', (m) => control_domains_show(m.matrix)),
    roLocked('matrix', (m) => matrix_show(m.matrix)),
    roLocked('guest_matrix', (m) => matrix_show(m.shadow_apcb)),
    {
      name: 'ap_config',
      mode: 0o644,
      // No lock: racy by design, as in the kernel.
      *show(_k, d) {
        return ap_config_show(mdevOf(d).matrix);
      },
      *store(_k, d, buf) {
        return yield* ap_config_store(md, mdevOf(d), buf);
      },
    },
  ];
  return [{ attrs }];
}
