// vfio_ap_drv.c: module init and exit. The matrix parent device lives at
// /sys/devices/vfio_ap/matrix on its own "matrix" bus with a driver of the same
// name as the module; the AP queue driver and the mdev driver/parent follow.
import { E, type KGen, type Kernel } from '../kernel/index.js';
import type { AttrOps } from '../sysfs/index.js';
import { Device, device_register, device_unregister, root_device_register, root_device_unregister } from '../base/core.js';
import { bus_register, bus_unregister } from '../base/bus.js';
import { driver_register, driver_unregister } from '../base/driver.js';
import type { BusType, DeviceDriver } from '../base/types.js';
import type { ApBus } from '../ap/ap_bus.js';
import type { ApDriver } from '../ap/ap_device.js';
import type { KvmHost } from '../kvm/index.js';
import type { Vfio } from '../vfio/vfio_main.js';
import { MdevParent, mdev_register_driver, mdev_register_parent, mdev_unregister_driver, mdev_unregister_parent, type Mdev, type MdevDriver, type MdevType } from '../vfio/mdev.js';
import { VFIO_DEVICE_API_AP_STRING } from '../vfio/uapi.js';
import { MatrixDev, MAX_ZDEV_ENTRIES_EXT, VFIO_AP_DRV_NAME, VFIO_AP_MDEV_NAME_HWVIRT, VFIO_AP_MDEV_TYPE_HWVIRT, infoFromQci } from './private.js';
import { defaultVfioApPieces, type VfioApPieces } from './pieces.js';
import { statusGroup, vfio_ap_queue_driver } from './queue.js';
import { vfio_ap_mdev_attr_groups } from './attrs.js';
import { vfio_ap_matrix_dev_ops, vfio_ap_mdev_probe, vfio_ap_mdev_remove } from './vfio.js';

export interface VfioApOptions {
  pieces?: Partial<VfioApPieces>;
}

/** The loaded vfio_ap module. */
export class VfioAp {
  readonly md: MatrixDev;
  root: Device | null = null;
  readonly matrix_bus: BusType = { name: 'matrix', match: () => 1 };
  readonly matrix_driver: DeviceDriver;
  readonly ap_driver: ApDriver;
  readonly mdev_driver: MdevDriver;
  readonly parent = new MdevParent();
  readonly mdev_type: MdevType = { sysfs_name: VFIO_AP_MDEV_TYPE_HWVIRT, pretty_name: VFIO_AP_MDEV_NAME_HWVIRT };

  constructor(
    readonly k: Kernel,
    readonly bus: ApBus,
    kvmHost: KvmHost,
    readonly vfio: Vfio,
    readonly mdev: Mdev,
    opts: VfioApOptions = {},
  ) {
    const md = (this.md = new MatrixDev(k, bus, kvmHost, { ...defaultVfioApPieces, ...opts.pieces }));
    md.queueStatusGroup = statusGroup(md);
    const features: AttrOps<Device> = {
      name: 'features',
      mode: 0o444,
      *show() {
        return 'guest_matrix hotplug ap_config\n';
      },
    };
    this.matrix_driver = { name: VFIO_AP_DRV_NAME, bus: this.matrix_bus, suppress_bind_attrs: true, dev_groups: [{ attrs: [features] }] };
    this.ap_driver = vfio_ap_queue_driver(md);
    const ops = vfio_ap_matrix_dev_ops(md);
    const vfioRef = vfio;
    this.mdev_driver = {
      device_api: VFIO_DEVICE_API_AP_STRING,
      max_instances: MAX_ZDEV_ENTRIES_EXT,
      probe: (m) => vfio_ap_mdev_probe(md, vfioRef, ops, m),
      remove: (m) => vfio_ap_mdev_remove(md, m),
      driver: { name: 'vfio_ap_mdev', dev_groups: vfio_ap_mdev_attr_groups(md) },
    };
  }

  /** vfio_ap_init(): -ENODEV on a machine without AP instructions. */
  *vfio_ap_init(): KGen<number> {
    return yield* this.k.fn('vfio_ap_init', this.init_body());
  }

  private *init_body(): KGen<number> {
    const k = this.k;
    const m = this.bus.machine;
    if (!m.facilities.ap) return -E.ENODEV!;
    // vfio_ap_matrix_dev_create()
    const core = this.bus.core;
    this.root = yield* root_device_register(core, 'vfio_ap');
    bus_register(core, this.matrix_bus);
    if (m.hasStfleFacility(12)) this.md.info = infoFromQci(m.qci());
    const dev = new Device(core, 'matrix');
    dev.parent = this.root;
    dev.bus = this.matrix_bus;
    yield* device_register(dev);
    this.md.device = dev;
    yield* driver_register(this.matrix_driver);
    yield* this.bus.ap_driver_register(this.ap_driver);
    // vfio_ap_mdev_register()
    const r: number = yield* mdev_register_driver(this.mdev, this.mdev_driver);
    if (r) return r;
    const r2: number = yield* mdev_register_parent(this.parent, dev, this.mdev_driver, [this.mdev_type]);
    if (r2) return r2;
    k.pr_info('vfio_ap: loaded');
    return 0;
  }

  /** vfio_ap_exit(): the reverse; removing the parent removes every mdev. */
  *vfio_ap_exit(): KGen<void> {
    yield* mdev_unregister_parent(this.parent);
    yield* mdev_unregister_driver(this.mdev_driver);
    yield* driver_unregister(this.ap_driver);
    yield* driver_unregister(this.matrix_driver);
    if (this.md.device) yield* device_unregister(this.md.device);
    yield* bus_unregister(this.bus.core, this.matrix_bus);
    if (this.root) yield* root_device_unregister(this.root);
  }
}
