// The host AP bus (drivers/s390/crypto/ap_bus.c): the ap bus type and its root
// device /sys/devices/ap, the default-driver reservation masks apmask/aqmask with
// the in_use callbacks, bus scans that create and remove card and queue devices
// from QCI and TAPQ, the driver callbacks on configuration changes, binding
// revision, and the bus attributes in /sys/bus/ap.
import { E, Errno, READS, type KGen, type Kernel, type Mutex, type Task, type Completion, type Work, type Timer } from '../kernel/index.js';
import type { Machine } from '../hw/machine.js';
import { type ApMask, fullMask, newMask, copyMask, maskEquals, maskAndNot, maskIsEmpty, testBit, formatMask, maskIds } from '../hw/mask.js';
import { type QciInfo, decodeHwinfo, qciFeatures, encodeQciBlock, qciBlocksEqual } from '../hw/registers.js';
import { AP_RESPONSE } from '../hw/status.js';
import { apqn, type Apqn } from '../hw/apqn.js';
import type { AttrOps } from '../sysfs/index.js';
import type { UeventEnv } from '../sysfs/uevent.js';
import { Device, device_uevent, device_unregister, device_register, root_device_register, type DriverCore } from '../base/core.js';
import { bus_register, bus_drivers, bus_create_file, device_reprobe } from '../base/bus.js';
import { driver_register } from '../base/driver.js';
import type { BusType, DeviceDriver, ProbeResult } from '../base/types.js';
import { sscanf_int, kstrtobool, kstrtoull } from '../lib/kstrto.js';
import { ap_parse_bitmap_str } from './mask_str.js';
import {
  ApCard,
  ApQueue,
  cardHwinfo,
  is_card_dev,
  is_queue_dev,
  AP_DRIVER_FLAG_DEFAULT,
  AP_DEVICE_ID_MATCH_CARD_TYPE,
  AP_DEVICE_ID_MATCH_QUEUE_TYPE,
  AP_DEVICE_TYPE_CEX4,
  AP_DEVICE_TYPE_CEX8,
  type ApDriver,
  type ApDevice,
} from './ap_device.js';
import { ApPoller } from './ap_poll.js';
import { apCardGroups } from './ap_card_attrs.js';
import { apQueueGroups } from './ap_queue_attrs.js';

export interface ApBusOptions {
  /** ap.apmask= / ap.aqmask= kernel parameters (parsed from an all-zero mask). */
  apmask?: string;
  aqmask?: string;
  /** ap.domain= */
  domain?: number;
  /** ap.useirq= (default on; needs facility 65). */
  useirq?: boolean;
  /** Bus rescan period in seconds (config_time). */
  config_time?: number;
  /** 250000 ns in an LPAR, 1500000 under z/VM. */
  poll_timeout?: number;
}

const NSEC_PER_SEC = 1_000_000_000;

/** /sys/bus/ap and everything behind it. One per simulated host. */
export class ApBus {
  readonly k: Kernel;
  readonly bus: BusType;
  root: Device | null = null;
  /** ap_perms: the default-driver reservation masks. */
  readonly perms: { apm: ApMask; aqm: ApMask };
  /** Serialises apmask/aqmask with the in_use callbacks (ap_perms_mutex before 6.18). */
  readonly ap_attr_mutex: Mutex;
  /** One bus scan at a time. */
  readonly ap_scan_bus_mutex: Mutex;
  ap_scan_bus_task: Task | null = null;
  ap_scan_bus_result = false;
  ap_scan_bus_count = 0;
  /** ap_qci_info / ap_qci_info_old (null without the QCI facility). */
  qci: QciInfo | null = null;
  qci_old: QciInfo | null = null;
  private qciBlock: Uint8Array | null = null;
  ap_max_adapter_id = 63;
  ap_max_domain_id = 15;
  ap_domain_index = -1;
  /** config_time in seconds. */
  ap_scan_bus_time: number;
  readonly ap_apqn_bindings_complete: Completion;
  ap_bindings_complete_count = 0;
  readonly ap_irq_flag: boolean;
  poll_high_timeout: number;
  ap_poll_kthread = false;
  readonly apft: boolean;
  ap_max_msg_size = 0;
  /** Queues with a driver_override set (6.19+): mask edits are refused while non-zero. */
  ap_driver_override_ctr = 0;
  /** Registered card and queue devices by id (bus_find_device with the id matchers). */
  readonly cards = new Map<number, ApCard>();
  readonly queues = new Map<Apqn, ApQueue>();
  readonly poller: ApPoller;
  private scanTimer: Timer | null = null;
  private readonly scanWork: Work;

  constructor(
    readonly core: DriverCore,
    readonly machine: Machine,
    opts: ApBusOptions = {},
  ) {
    const k = (this.k = core.k);
    // Read sections (the per-queue reservation checks) must leave ap_perms unchanged.
    this.ap_attr_mutex = k.mutex_init('ap_attr_mutex', { digest: () => String.fromCharCode(...this.perms.apm, ...this.perms.aqm) });
    this.ap_scan_bus_mutex = k.mutex_init('ap_scan_bus_mutex');
    this.ap_apqn_bindings_complete = k.init_completion('ap_apqn_bindings_complete');
    this.perms = { apm: fullMask(), aqm: fullMask() };
    // Kernel parameters start from all zeros and apply the string with the sysfs parser.
    if (opts.apmask !== undefined) this.perms.apm = parseParam('ap.apmask', opts.apmask);
    if (opts.aqmask !== undefined) this.perms.aqm = parseParam('ap.aqmask', opts.aqmask);
    if (opts.domain !== undefined) this.ap_domain_index = opts.domain;
    this.ap_scan_bus_time = opts.config_time ?? 30;
    this.ap_irq_flag = (opts.useirq ?? true) && machine.hasStfleFacility(65);
    this.apft = machine.hasStfleFacility(15);
    this.poll_high_timeout = opts.poll_timeout ?? 250_000;
    this.poller = new ApPoller(this);
    this.scanWork = k.INIT_WORK('ap_scan_bus_work', () => this.ap_scan_bus_wq_callback());
    this.bus = {
      name: 'ap',
      match: (dev, drv) => this.ap_bus_match(dev, drv),
      probe: (k2, dev) => this.ap_device_probe(k2, dev),
      remove: (k2, dev) => this.ap_device_remove(k2, dev),
      uevent: (dev, env) => this.ap_uevent(dev, env),
      apbus: this,
    } as BusType & { apbus: ApBus };
  }

  // ---------------------------------------------------------------- init

  /**
   * ap_module_init(): QCI, the bus and /sys/devices/ap, the bus attributes, the
   * scan timer, config-change notifications, and the first scan (queued work).
   */
  *ap_module_init(): KGen<void> {
    const k = this.k;
    yield* k.fn('ap_module_init', this.init_body());
  }

  private *init_body(): KGen<void> {
    const k = this.k;
    if (this.ap_domain_index < -1 || this.ap_domain_index > this.ap_max_domain_id_for_param()) {
      k.pr_warn(`ap: The specified AP domain index ${this.ap_domain_index} is not valid`);
      this.ap_domain_index = -1;
    }
    this.ap_init_qci_info();
    bus_register(this.core, this.bus);
    for (const a of busAttrs) bus_create_file(this.bus, a);
    this.root = yield* root_device_register(this.core, 'ap');
    this.root.bus = this.bus; // after registration, so /devices/ap sends ap uevents
    this.machine.onInterrupt((e) => {
      if (e.gisa === 0) this.poller.ap_interrupt_handler();
    });
    this.machine.onConfigChange(() => this.ap_bus_cfg_chg());
    this.k.addEventSource(this.machine);
    // The first scan runs as soon as possible, then every config_time seconds.
    yield k.queue_work(this.longWq(), this.scanWork);
  }

  private longWq() {
    return this.k.system_wq;
  }

  private ap_max_domain_id_for_param(): number {
    return this.machine.hasStfleFacility(12) ? 255 : 15;
  }

  /** ap_init_qci_info(): the first QCI, and Na/Nd as the maximum ids with APXA. */
  private ap_init_qci_info(): void {
    if (!this.machine.hasStfleFacility(12)) {
      this.k.pr_info('ap: QCI not supported, using default adapter and domain ids');
      return;
    }
    this.qci = this.machine.qci();
    this.qciBlock = encodeQciBlock(this.qci);
    this.qci_old = cloneQci(this.qci);
    if (this.qci.apxa) {
      if (this.qci.na) this.ap_max_adapter_id = this.qci.na;
      if (this.qci.nd) this.ap_max_domain_id = this.qci.nd;
    }
  }

  /** Registers an AP driver (ap_driver_register). */
  *ap_driver_register(drv: ApDriver): KGen<void> {
    yield* driver_register(drv);
  }

  // ---------------------------------------------------------------- config tests

  ap_test_config_card_id(id: number): boolean {
    if (id > this.ap_max_adapter_id) return false;
    return this.qci ? testBit(this.qci.apm, id) : true;
  }

  ap_test_config_usage_domain(dom: number): boolean {
    if (dom > this.ap_max_domain_id) return false;
    return this.qci ? testBit(this.qci.aqm, dom) : true;
  }

  ap_test_config_ctrl_domain(dom: number): boolean {
    if (dom > this.ap_max_domain_id) return false;
    return this.qci ? testBit(this.qci.adm, dom) : true;
  }

  /** ap_owned_by_def_drv(): reserved for the default drivers by apmask and aqmask. */
  ap_owned_by_def_drv(card: number, queue: number): boolean {
    return testBit(this.perms.apm, card) && testBit(this.perms.aqm, queue);
  }

  /**
   * ap_apqn_in_matrix_owned_by_def_drv(): true if any APQN of apm x aqm is
   * reserved for the default drivers. Takes no lock: callers (vfio_ap) hold
   * ap_attr_mutex themselves, which is how the seed-003 ABBA was resolved.
   */
  ap_apqn_in_matrix_owned_by_def_drv(apm: ApMask, aqm: ApMask): boolean {
    for (const card of maskIds(apm)) {
      if (!testBit(this.perms.apm, card)) continue;
      for (const q of maskIds(aqm)) if (testBit(this.perms.aqm, q)) return true;
    }
    return false;
  }

  // ---------------------------------------------------------------- bus callbacks

  /** ap_bus_match(): the driver's id table against card/queue device types. */
  private ap_bus_match(dev: Device, drv: DeviceDriver): number {
    const ad = drv as ApDriver;
    const t = (dev as ApDevice).device_type;
    for (const id of ad.ids ?? []) {
      if (is_card_dev(dev) && id.match_flags & AP_DEVICE_ID_MATCH_CARD_TYPE && id.dev_type === t) return 1;
      if (is_queue_dev(dev) && id.match_flags & AP_DEVICE_ID_MATCH_QUEUE_TYPE && id.dev_type === t) return 1;
    }
    return 0;
  }

  /** ap_uevent(): DEV_TYPE/MODALIAS on cards, MODE on cards and queues. */
  private ap_uevent(dev: Device, env: UeventEnv): number {
    if (dev === this.root) return 0;
    let hw: { accel: boolean; cca: boolean; ep11: boolean };
    if (is_card_dev(dev)) {
      const t = dev.device_type.toString(16).toUpperCase();
      env.add(`DEV_TYPE=${t.padStart(4, '0')}`);
      env.add(`MODALIAS=ap:t${t.padStart(2, '0')}`);
      hw = dev.hwinfo;
    } else if (is_queue_dev(dev)) hw = dev.card.hwinfo;
    else return 0;
    if (hw.accel) env.add('MODE=accel');
    else if (hw.cca) env.add('MODE=cca');
    else if (hw.ep11) env.add('MODE=ep11');
    return 0;
  }

  /**
   * ap_device_probe(): a queue is only bound by a driver whose default flag
   * matches its reservation; then the driver's probe; then the bindings check.
   */
  private *ap_device_probe(k: Kernel, dev: Device): KGen<ProbeResult> {
    const drv = dev.driver as ApDriver;
    if (is_queue_dev(dev)) {
      if (dev.driver_override !== null && dev.driver_override !== drv.name) return -E.ENODEV;
      yield k.mutex_lock(this.ap_attr_mutex, READS);
      const devres = this.ap_owned_by_def_drv(dev.apid, dev.apqi);
      yield k.mutex_unlock(this.ap_attr_mutex);
      const drvres = (drv.flags & AP_DRIVER_FLAG_DEFAULT) !== 0;
      if (devres !== drvres && dev.driver_override === null) return -E.ENODEV;
    }
    let rc: ProbeResult = -E.ENODEV;
    if (drv.probe) rc = yield* k.fn(`${drv.name}_probe`, drv.probe(k, dev as ApDevice));
    if (!rc && is_queue_dev(dev)) yield* this.ap_check_bindings_complete();
    return rc;
  }

  /** ap_device_remove(): queue shutdown around the driver's remove, then ZAPQ. */
  private *ap_device_remove(k: Kernel, dev: Device): KGen<void> {
    const drv = dev.driver as ApDriver;
    if (is_queue_dev(dev)) dev.sm.ap_queue_prepare_remove();
    if (drv.remove) yield* k.fn(`${drv.name}_remove`, drv.remove(k, dev as ApDevice));
    if (is_queue_dev(dev)) {
      dev.sm.ap_queue_remove();
      this.poller.forget(dev);
    }
  }

  // ---------------------------------------------------------------- bindings

  /** ap_calc_bound_apqns(): queue devices and how many of them have a driver. */
  ap_calc_bound_apqns(): { apqns: number; bound: number } {
    let apqns = 0;
    let bound = 0;
    for (const q of this.queues.values()) {
      apqns++;
      if (q.driver) bound++;
    }
    return { apqns, bound };
  }

  /** ap_check_bindings_complete(): after the first scan, once every queue has a driver. */
  *ap_check_bindings_complete(): KGen<void> {
    if (this.ap_scan_bus_count < 1) return;
    const { apqns, bound } = this.ap_calc_bound_apqns();
    if (bound !== apqns || this.k.completion_done(this.ap_apqn_bindings_complete)) return;
    yield this.k.complete_all(this.ap_apqn_bindings_complete);
    this.ap_bindings_complete_count++;
    if (this.root) device_uevent(this.root, 'change', ['BINDINGS=complete', `COMPLETECOUNT=${this.ap_bindings_complete_count}`]);
  }

  // ---------------------------------------------------------------- masks

  /** apmask_store / aqmask_store. */
  *mask_store(which: 'apm' | 'aqm', buf: string): KGen<number> {
    const k = this.k;
    if ((yield k.mutex_lock_interruptible(this.ap_attr_mutex)) !== 0) return -E.ERESTARTSYS!;
    let changes = false;
    let rc = 0;
    const depth = k.opsDepth();
    try {
      const cur = this.perms[which];
      const next = ap_parse_bitmap_str(buf, cur);
      // "restrict driver_override versus apmask and aqmask use" (6.19): the exact
      // errno is not documented; EBUSY says "in use by overrides".
      if (this.ap_driver_override_ctr > 0 && !maskEquals(cur, next)) throw new Errno(E.EBUSY!);
      changes = !maskEquals(cur, next);
      if (changes) rc = yield* (which === 'apm' ? this.apmask_commit(next) : this.aqmask_commit(next));
    } catch (e) {
      k.opsRestore(depth);
      if (!(e instanceof Errno)) throw e;
      rc = -e.errno;
    }
    yield k.mutex_unlock(this.ap_attr_mutex);
    if (rc) return rc;
    if (changes) {
      yield* this.ap_bus_revise_bindings();
      this.ap_send_mask_changed_uevent(which);
    }
    return buf.length;
  }

  /** apmask_commit(): newly set adapters must not be in use by a non-default driver. */
  private *apmask_commit(newapm: ApMask): KGen<number> {
    const reserved = maskAndNot(newapm, this.perms.apm);
    if (!maskIsEmpty(reserved)) {
      const rc = yield* this.verify_reservations(reserved, this.perms.aqm);
      if (rc) return rc;
    }
    this.perms.apm = newapm;
    return 0;
  }

  private *aqmask_commit(newaqm: ApMask): KGen<number> {
    const reserved = maskAndNot(newaqm, this.perms.aqm);
    if (!maskIsEmpty(reserved)) {
      const rc = yield* this.verify_reservations(this.perms.apm, reserved);
      if (rc) return rc;
    }
    this.perms.aqm = newaqm;
    return 0;
  }

  /** __verify_card_reservations / __verify_queue_reservations over all drivers. */
  private *verify_reservations(apm: ApMask, aqm: ApMask): KGen<number> {
    for (const drv of bus_drivers(this.bus) as ApDriver[]) {
      if (!drv.in_use) continue;
      const r = yield* this.k.fn(`${drv.name}_in_use`, drv.in_use(this.k, apm, aqm));
      if (r) return -E.EBUSY!;
    }
    return 0;
  }

  private ap_send_mask_changed_uevent(which: 'apm' | 'aqm'): void {
    // The kernel's snprintf format ends in "\n", which ends up inside the value.
    const v = which === 'apm' ? `APMASK=${formatMask(this.perms.apm)}\n` : `AQMASK=${formatMask(this.perms.aqm)}\n`;
    if (this.root) device_uevent(this.root, 'change', [v]);
  }

  /**
   * ap_bus_revise_bindings(): queues whose reservation no longer matches the kind
   * of driver they are bound to are reprobed.
   */
  *ap_bus_revise_bindings(): KGen<void> {
    for (const aq of [...this.queues.values()]) {
      if (aq.dead) continue;
      yield this.k.mutex_lock(this.ap_attr_mutex, READS);
      const devres = this.ap_owned_by_def_drv(aq.apid, aq.apqi);
      yield this.k.mutex_unlock(this.ap_attr_mutex);
      // An unbound queue counts as "not default" (to_ap_drv(NULL) has no flags), so
      // only queues that became reserved are probed again.
      const drv = aq.driver as ApDriver | null;
      const drvres = drv !== null && (drv.flags & AP_DRIVER_FLAG_DEFAULT) !== 0;
      if (devres !== drvres) yield* device_reprobe(aq);
    }
  }

  // ---------------------------------------------------------------- scanning

  /** The periodic/queued scan: skipped if a scan is already running. */
  private *ap_scan_bus_wq_callback(): KGen<void> {
    const k = this.k;
    if (yield k.mutex_trylock(this.ap_scan_bus_mutex)) {
      this.ap_scan_bus_task = k.current;
      this.ap_scan_bus_result = yield* this.ap_scan_bus();
      this.ap_scan_bus_task = null;
      yield k.mutex_unlock(this.ap_scan_bus_mutex);
    }
  }

  /**
   * ap_bus_force_rescan(): scan now in the calling task, or wait for the running
   * scan and take its result. Does nothing before the initial scan.
   */
  *ap_bus_force_rescan(): KGen<boolean> {
    const k = this.k;
    if (this.ap_scan_bus_count <= 0) return false;
    if (this.ap_scan_bus_mutex.is_locked() && this.ap_scan_bus_task === k.current) return false;
    if (yield k.mutex_trylock(this.ap_scan_bus_mutex)) {
      this.ap_scan_bus_task = k.current;
      const rc = (this.ap_scan_bus_result = yield* this.ap_scan_bus());
      this.ap_scan_bus_task = null;
      yield k.mutex_unlock(this.ap_scan_bus_mutex);
      return rc;
    }
    if ((yield k.mutex_lock_interruptible(this.ap_scan_bus_mutex)) !== 0) return false;
    const rc = this.ap_scan_bus_result;
    yield k.mutex_unlock(this.ap_scan_bus_mutex);
    return rc;
  }

  /** ap_bus_cfg_chg(): the CHSC "AP configuration changed" event forces a rescan. */
  ap_bus_cfg_chg(): void {
    const k = this.k;
    k.spawn('kmcheck', k.fn('ap_bus_cfg_chg', this.ap_bus_force_rescan()));
  }

  /** ap_get_configuration(): re-fetch QCI; true if the 128-byte block changed. */
  private ap_get_configuration(): boolean {
    if (!this.qci) return false;
    this.qci_old = this.qci;
    const prevBlock = this.qciBlock!;
    this.qci = this.machine.qci();
    this.qciBlock = encodeQciBlock(this.qci);
    return !qciBlocksEqual(prevBlock, this.qciBlock);
  }

  /** ap_scan_bus(): one scan, under ap_scan_bus_mutex. */
  *ap_scan_bus(): KGen<boolean> {
    return yield* this.k.fn('ap_scan_bus', this.scan_body());
  }

  private *scan_body(): KGen<boolean> {
    const k = this.k;
    const config_changed = this.ap_get_configuration();
    if (config_changed) {
      const cur = this.qci!;
      const old = this.qci_old!;
      if (!maskIsEmpty(maskAndNot(cur.apm, old.apm)) || !maskIsEmpty(maskAndNot(cur.aqm, old.aqm))) k.reinit_completion(this.ap_apqn_bindings_complete);
      yield* this.notify('on_config_changed');
    }
    this.ap_select_domain();
    for (let ap = 0; ap <= this.ap_max_adapter_id; ap++) yield* this.ap_scan_adapter(ap);
    if (config_changed) yield* this.notify('on_scan_complete');
    if (++this.ap_scan_bus_count === 1 && this.root) device_uevent(this.root, 'change', ['INITSCAN=done']);
    yield* this.ap_check_bindings_complete();
    this.armScanTimer();
    return config_changed;
  }

  private *notify(which: 'on_config_changed' | 'on_scan_complete'): KGen<void> {
    for (const drv of bus_drivers(this.bus) as ApDriver[]) {
      const cb = drv[which];
      if (cb) yield* this.k.fn(`${drv.name}_${which}`, cb.call(drv, this.k, this.qci!, this.qci_old!));
    }
  }

  /** (Re-)arms ap_scan_bus_timer for config_time seconds from now. */
  armScanTimer(): void {
    const k = this.k;
    const expires = k.now() + this.ap_scan_bus_time * NSEC_PER_SEC;
    if (this.scanTimer) k.mod_timer(this.scanTimer, expires);
    else this.scanTimer = k.add_timer(expires, () => void k.queue_work(this.longWq(), this.scanWork), 'ap_scan_bus_timer');
  }

  /** ap_select_domain(): the first usable domain with an answering queue, unless set. */
  private ap_select_domain(): void {
    if (this.ap_domain_index >= 0) return;
    for (let dom = 0; dom <= this.ap_max_domain_id; dom++) {
      if (!this.ap_test_config_usage_domain(dom) || !testBit(this.perms.aqm, dom)) continue;
      for (let card = 0; card <= this.ap_max_adapter_id; card++) {
        if (!this.ap_test_config_card_id(card) || !testBit(this.perms.apm, card)) continue;
        if (this.machine.tapq(apqn(card, dom), { t: this.apft }).status.responseCode === AP_RESPONSE.NORMAL) {
          this.ap_domain_index = dom;
          return;
        }
      }
    }
  }

  /**
   * ap_queue_info(): TAPQ an APQN; 1 = usable info (RC 00/02/03/04/05), 0 = no such
   * queue (RC 01), -1 = anything else. decfg/chkstop from RC 03/04.
   */
  ap_queue_info(q: Apqn): { rc: -1 | 0 | 1; hw: ReturnType<typeof decodeHwinfo> | null; decfg: boolean; chkstop: boolean } {
    const r = this.machine.tapq(q, { t: this.apft });
    const rc = r.status.responseCode;
    switch (rc) {
      case AP_RESPONSE.NORMAL:
      case AP_RESPONSE.RESET_IN_PROGRESS:
      case AP_RESPONSE.DECONFIGURED:
      case AP_RESPONSE.CHECKSTOPPED:
      case AP_RESPONSE.BUSY: {
        const hw = this.decodeHwinfo(r.hwinfo);
        return { rc: 1, hw, decfg: rc === AP_RESPONSE.DECONFIGURED, chkstop: rc === AP_RESPONSE.CHECKSTOPPED };
      }
      case AP_RESPONSE.Q_NOT_AVAIL:
        return { rc: 0, hw: null, decfg: false, chkstop: false };
      default:
        return { rc: -1, hw: null, decfg: false, chkstop: false };
    }
  }

  private readonly hwinfoCache = new Map<bigint, ReturnType<typeof decodeHwinfo>>();
  /** Decoded TAPQ GR2 values are immutable: decode each distinct value once. */
  private decodeHwinfo(gr2: bigint): ReturnType<typeof decodeHwinfo> {
    let h = this.hwinfoCache.get(gr2);
    if (h === undefined) {
      h = Object.freeze(decodeHwinfo(gr2));
      this.hwinfoCache.set(gr2, h);
    }
    return h;
  }

  /** ap_get_compatible_type(): < CEX4 unsupported; CEX4..CEX8 as is; newer via QACT. */
  private ap_get_compatible_type(q: Apqn, rawtype: number): number {
    if (rawtype < AP_DEVICE_TYPE_CEX4) {
      this.dbf(`ap_get_compatible_type queue=${q.toString(16)} unsupported type ${rawtype}`);
      return 0;
    }
    if (rawtype <= AP_DEVICE_TYPE_CEX8) return rawtype;
    if (this.qci?.qact) {
      const r = this.machine.qact(q);
      if (r.status.responseCode === AP_RESPONSE.NORMAL && r.compatibleType >= AP_DEVICE_TYPE_CEX4 && r.compatibleType <= AP_DEVICE_TYPE_CEX8) return r.compatibleType;
    }
    return 0;
  }

  /** ap_scan_adapter(): create, update or remove one card and its queues. */
  private *ap_scan_adapter(ap: number): KGen<void> {
    let ac = this.cards.get(ap) ?? null;
    if (!this.ap_test_config_card_id(ap)) {
      if (ac) yield* this.rm_card_and_queues(ac);
      return;
    }
    let found: ReturnType<ApBus['ap_queue_info']> | null = null;
    let qid = 0;
    for (let dom = 0; dom <= this.ap_max_domain_id; dom++) {
      if (!this.ap_test_config_usage_domain(dom)) continue;
      qid = apqn(ap, dom);
      const i = this.ap_queue_info(qid);
      if (i.rc > 0) {
        found = i;
        break;
      }
    }
    if (!found || !found.hw || !found.hw.at) {
      if (ac) yield* this.rm_card_and_queues(ac);
      return;
    }
    const hw = cardHwinfo(found.hw);
    if (ac) {
      if (ac.hwinfo.at !== hw.at || ac.hwinfo.fac !== hw.fac) {
        yield* this.rm_card_and_queues(ac);
        ac = null;
      } else {
        ac.chkstop = found.chkstop;
        if (found.decfg && ac.config) {
          ac.config = false;
          device_uevent(ac, 'change', ['CONFIG=0']);
        } else if (!found.decfg && !ac.config) {
          ac.config = true;
          device_uevent(ac, 'change', ['CONFIG=1']);
        }
      }
    }
    if (!ac) {
      const comp = this.ap_get_compatible_type(qid, hw.at);
      if (!comp) return;
      ac = new ApCard(this.core, ap, hw, comp, found.decfg, found.chkstop);
      ac.bus = this.bus;
      ac.parent = this.root;
      ac.groups = apCardGroups;
      if (ac.maxmsgsize > this.ap_max_msg_size) this.ap_max_msg_size = ac.maxmsgsize;
      this.cards.set(ap, ac);
      const depth = this.k.opsDepth();
      try {
        yield* device_register(ac);
      } catch (e) {
        this.k.opsRestore(depth);
        this.cards.delete(ap);
        if (!(e instanceof Errno)) throw e;
        return;
      }
    }
    yield* this.ap_scan_domains(ac);
  }

  private *rm_card_and_queues(ac: ApCard): KGen<void> {
    for (const q of [...this.queues.values()]) if (q.card === ac) yield* this.rm_queue(q);
    this.cards.delete(ac.id);
    yield* device_unregister(ac);
  }

  private *rm_queue(q: ApQueue): KGen<void> {
    this.queues.delete(q.qid);
    yield* device_unregister(q);
  }

  /** ap_scan_domains(): queue devices of one card against the configuration. */
  private *ap_scan_domains(ac: ApCard): KGen<void> {
    for (let dom = 0; dom <= this.ap_max_domain_id; dom++) {
      const qid = apqn(ac.id, dom);
      const aq = this.queues.get(qid) ?? null;
      if (!this.ap_test_config_usage_domain(dom)) {
        if (aq) yield* this.rm_queue(aq);
        continue;
      }
      const i = this.ap_queue_info(qid);
      if (i.rc < 0) {
        if (aq) yield* this.rm_queue(aq);
        continue;
      }
      if (i.rc === 0) continue;
      if (!aq) {
        const q = new ApQueue(this.core, qid, ac, this.poller.env, i.decfg, i.chkstop);
        q.se_bstate = i.hw?.bs ?? 0;
        q.bus = this.bus;
        q.parent = ac;
        q.groups = apQueueGroups;
        this.queues.set(qid, q);
        const depth = this.k.opsDepth();
        try {
          yield* device_register(q);
        } catch (e) {
          this.k.opsRestore(depth);
          this.queues.delete(qid);
          if (!(e instanceof Errno)) throw e;
        }
        continue;
      }
      const sm = aq.sm;
      aq.se_bstate = i.hw?.bs ?? 0;
      if (i.chkstop && !sm.chkstop) {
        sm.chkstop = true;
        if (sm.dev_state > 0) sm.markUnusable(AP_RESPONSE.CHECKSTOPPED);
        else sm.flush();
        continue;
      } else if (!i.chkstop && sm.chkstop) {
        sm.chkstop = false;
        if (sm.dev_state > 0) this.poller.wait(aq, sm.ap_queue_init_state());
        continue;
      }
      if (i.decfg && sm.config) {
        sm.config = false;
        if (sm.dev_state > 0) sm.markUnusable(AP_RESPONSE.DECONFIGURED);
        else sm.flush();
        device_uevent(aq, 'change', ['CONFIG=0']);
        continue;
      } else if (!i.decfg && !sm.config) {
        sm.config = true;
        if (sm.dev_state > 0) this.poller.wait(aq, sm.ap_queue_init_state());
        device_uevent(aq, 'change', ['CONFIG=1']);
        continue;
      }
      if (!i.decfg && sm.dev_state === 3 /* ERROR */) {
        sm.flush();
        this.poller.wait(aq, sm.ap_queue_init_state());
      }
    }
  }

  /** s390dbf-style debug trace (not dmesg). */
  readonly dbfLog: string[] = [];
  dbf(text: string): void {
    if (this.dbfLog.length > 1000) this.dbfLog.splice(0, 500);
    this.dbfLog.push(text);
  }

  // ---------------------------------------------------------------- default-driver helpers

  /** Card/queue lookups the drivers use. */
  card(apid: number): ApCard | undefined {
    return this.cards.get(apid);
  }
  queue(q: Apqn): ApQueue | undefined {
    return this.queues.get(q);
  }
}

function parseParam(name: string, s: string): ApMask {
  try {
    return ap_parse_bitmap_str(s, newMask());
  } catch (e) {
    if (e instanceof Errno) throw new Errno(E.EINVAL, `${name}=${s}: invalid mask`);
    throw e;
  }
}

function cloneQci(q: QciInfo): QciInfo {
  return { ...q, apm: copyMask(q.apm), aqm: copyMask(q.aqm), adm: copyMask(q.adm) };
}

/** The bus that owns a bus attribute (the attrs are shared; the bus is their obj). */
function apBusOf(bus: BusType): ApBus {
  return (bus as BusType & { apbus: ApBus }).apbus;
}

// ------------------------------------------------------------------ bus attributes

const ro = (name: string, show: (b: ApBus) => string): AttrOps<BusType> => ({
  name,
  mode: 0o444,
  *show(_k, bus) {
    return show(apBusOf(bus));
  },
});

const busAttrs: AttrOps<BusType>[] = [
  ro('ap_max_adapter_id', (b) => `${b.ap_max_adapter_id}\n`),
  ro('ap_max_domain_id', (b) => `${b.ap_max_domain_id}\n`),
  ro('ap_interrupts', (b) => `${b.ap_irq_flag ? 1 : 0}\n`),
  ro('ap_adapter_mask', (b) => (b.qci ? `${formatMask(b.qci.apm)}\n` : 'not supported\n')),
  ro('ap_usage_domain_mask', (b) => (b.qci ? `${formatMask(b.qci.aqm)}\n` : 'not supported\n')),
  ro('ap_control_domain_mask', (b) => (b.qci ? `${formatMask(b.qci.adm)}\n` : 'not supported\n')),
  // features_show() overwrites the trailing blank with the newline and returns the
  // count without it, so no flags at all reads as an empty file.
  ro('features', (b) => {
    if (!b.qci) return '-\n';
    const f = qciFeatures(b.qci);
    return f.length ? `${f.join(' ')}\n` : '';
  }),
  ro('bindings', (b) => {
    const { apqns, bound } = b.ap_calc_bound_apqns();
    return b.ap_scan_bus_count >= 1 && bound === apqns ? `${bound}/${apqns} (complete)\n` : `${bound}/${apqns}\n`;
  }),
  {
    name: 'ap_domain',
    mode: 0o644,
    *show(_k, bus) {
      return `${apBusOf(bus).ap_domain_index}\n`;
    },
    *store(_k, bus, buf) {
      const b = apBusOf(bus);
      const d = sscanf_int(buf, 0);
      if (d === null || d < 0 || d > b.ap_max_domain_id || !testBit(b.perms.aqm, d)) return -E.EINVAL!;
      b.ap_domain_index = d;
      return buf.length;
    },
  },
  {
    name: 'config_time',
    mode: 0o644,
    *show(_k, bus) {
      return `${apBusOf(bus).ap_scan_bus_time}\n`;
    },
    *store(_k, bus, buf) {
      const b = apBusOf(bus);
      const t = sscanf_int(buf);
      if (t === null || t < 5 || t > 120) return -E.EINVAL!;
      b.ap_scan_bus_time = t;
      b.armScanTimer();
      return buf.length;
    },
  },
  {
    name: 'poll_thread',
    mode: 0o644,
    *show(_k, bus) {
      return `${apBusOf(bus).ap_poll_kthread ? 1 : 0}\n`;
    },
    *store(_k, bus, buf) {
      const v = kstrtobool(buf);
      if (v === null) return -E.EINVAL!;
      apBusOf(bus).ap_poll_kthread = v;
      return buf.length;
    },
  },
  {
    name: 'poll_timeout',
    mode: 0o644,
    *show(_k, bus) {
      return `${apBusOf(bus).poll_high_timeout}\n`;
    },
    *store(_k, bus, buf) {
      const v = kstrtoull(buf, 10);
      if (typeof v === 'number') return v;
      // 1 ns .. 120 s; the kernel rejects anything outside with EINVAL.
      if (v < 1n || v > 120_000_000_000n) return -E.EINVAL!;
      apBusOf(bus).poll_high_timeout = Number(v);
      return buf.length;
    },
  },
  {
    name: 'apmask',
    mode: 0o644,
    *show(k, bus) {
      const b = apBusOf(bus);
      if ((yield k.mutex_lock_interruptible(b.ap_attr_mutex)) !== 0) throw new Errno(E.ERESTARTSYS!);
      const s = `${formatMask(b.perms.apm)}\n`;
      yield k.mutex_unlock(b.ap_attr_mutex);
      return s;
    },
    *store(_k, bus, buf) {
      return yield* apBusOf(bus).mask_store('apm', buf);
    },
  },
  {
    name: 'aqmask',
    mode: 0o644,
    *show(k, bus) {
      const b = apBusOf(bus);
      if ((yield k.mutex_lock_interruptible(b.ap_attr_mutex)) !== 0) throw new Errno(E.ERESTARTSYS!);
      const s = `${formatMask(b.perms.aqm)}\n`;
      yield k.mutex_unlock(b.ap_attr_mutex);
      return s;
    },
    *store(_k, bus, buf) {
      return yield* apBusOf(bus).mask_store('aqm', buf);
    },
  },
  {
    name: 'scans',
    mode: 0o644,
    *show(_k, bus) {
      return `${apBusOf(bus).ap_scan_bus_count}\n`;
    },
    *store(_k, bus, buf) {
      yield* apBusOf(bus).ap_bus_force_rescan();
      return buf.length;
    },
  },
];

