// The simulated IBM Z machine as seen by one LPAR: its AP configuration (QCI), the crypto adapters
// and their queues, executing the AP instructions with architectural condition codes and response
// codes (spec 2). It knows nothing of Linux.
//
// Time. The machine never reads a clock of its own: env.now() is virtual time in ns. Everything
// time-dependent is a deadline evaluated lazily on the next instruction ("the reset started at t0
// is done once now() >= t0 + latency"). Nothing fires by itself. The two kinds of notification —
// configuration changes and adapter interruptions — go to synchronously registered listeners:
//   * configuration changes are raised by the HMC operation itself, synchronously;
//   * interruptions are raised by processEvents(), which the scheduler calls whenever
//     now() >= nextEventTime(). nextEventTime() also reports when a reply becomes ready or a
//     reset completes, so a polling driver can be woken at the right virtual instant.

import { Prng, hashString } from '../kernel/prng.js';
import { apqnCard, apqnDomain, formatApqn, isApqn, mustParseApqn, type Apqn } from './apqn.js';
import { ProgramException } from './errors.js';
import { Hmc, type ConfigChangeKind, type HmcBackend } from './hmc.js';
import { assignBit, copyMask, maskFromIds, testBit, type ApMask } from './mask.js';
import { AP_TYPE_NUMBER, parseProfile, type AdapterMode, type AdapterProfile, type AdapterType, type HostFacilities, type HostProfile } from './profile.js';
import { QueueState, type QueuedRequest } from './queue.js';
import { AP_FUNC, NON_APXA_APQN_MASK, encodeHwinfo, encodeQciBlock, type AqicControl, type QciInfo } from './registers.js';
import { AP_RESPONSE, ccFor, makeStatus, type ApQueueStatus, type ApResult } from './status.js';

export interface MachineEnv {
  /** Current virtual time in ns. Must be non-decreasing. */
  now(): number;
  /** Run PRNG for jitter and random faults; a profile-seeded one is used if absent. */
  rng?: Prng;
}

export interface InterruptEvent {
  /** Virtual time the interruption became pending (reply ready, or IR enabled later). */
  readonly time: number;
  readonly apqn: Apqn;
  readonly isc: number;
  readonly nib: number;
  /** Non-zero when the queue's interruptions are forwarded to a guest (AQIC with a GISA). */
  readonly gisa: number;
  readonly gisc: number;
  /** The reply whose arrival raised it. */
  readonly psmid: bigint;
}

export interface ConfigChangeEvent {
  readonly time: number;
  readonly kind: ConfigChangeKind;
  readonly id: number;
  readonly added: boolean;
}

export interface TapqResult extends ApResult {
  /** GR2 (hwinfo, spec 2.5); 0 when the response code makes it invalid. */
  readonly hwinfo: bigint;
}

export interface QactResult extends ApResult {
  /** Compatible AP type 10..14 for this adapter, or 0 if none. */
  readonly compatibleType: number;
}

export interface NqapOptions {
  /** "Special command" bit; needs the APSC facility else RC 0x16. */
  special?: boolean;
  /** Default true. false = more parts follow (multi-part message). */
  lastPart?: boolean;
  /** This NQAP continues a multi-part message; without a first part → RC 0x13. */
  continuation?: boolean;
  /**
   * Domain the request's CPRB addresses, if the caller models it. Must be the queue's own domain or
   * a control domain, else RC 0x42 INVALID_DOMAIN (an approximation; spec only names the RC).
   */
  domain?: number;
}

export interface DqapResult extends ApResult {
  readonly psmid?: bigint;
  /** The (part of the) reply received. */
  readonly data?: Uint8Array;
  /** Bytes of this reply still held by the adapter (cc 1 = partial receive), else 0. */
  readonly residual: number;
}

export interface ResponderRequest {
  readonly apqn: Apqn;
  readonly psmid: bigint;
  readonly data: Uint8Array;
  readonly special: boolean;
  readonly adapter: AdapterInfo;
}
/** Computes a reply message for a request. Default: echo the request. */
export type Responder = (req: ResponderRequest) => Uint8Array;

export interface AdapterInfo {
  readonly id: number;
  readonly type: AdapterType;
  readonly mode: AdapterMode;
  /** Compatible hardware type 6..14 (10 = CEX4 ... 14 = CEX8). */
  readonly hwType: number;
  readonly rawType: number;
  readonly queueDepth: number;
  readonly maxMessageSize: number;
  readonly serialNumber: string;
  readonly ep11ApiOrdinal: number;
  readonly ep11FwVersion: string;
  /** In the LPAR's configuration (QCI APM). */
  readonly inConfig: boolean;
  /** SCLP-configured (false = standby, RC 03). */
  readonly configured: boolean;
  readonly checkstopped: boolean;
}

export interface QueueSnapshot {
  readonly apqn: Apqn;
  readonly resetting: boolean;
  readonly outstanding: number;
  readonly repliesReady: number;
  readonly irq: { isc: number; nib: number; gisa: number; gisc: number } | null;
}

export type ApInstruction = 'tapq' | 'rapq' | 'zapq' | 'aqic' | 'qact' | 'nqap' | 'dqap';

interface AdapterState {
  readonly p: AdapterProfile;
  readonly hwType: number;
  configured: boolean;
  checkstopped: boolean;
  /** Cached TAPQ GR2 without / with the T bit. */
  hwinfo?: bigint;
  hwinfoT?: bigint;
}

/** Fault-injection levers (tests and chaos runs). */
export class MachineFaults {
  constructor(private readonly m: Machine) {}

  /**
   * The next `count` matching instructions on `apqn` answer `rc` (cc 3 unless rc 0) without doing
   * anything. Checked after the configuration checks (RC 01/03/04) and before everything else.
   */
  injectResponse(apqn: Apqn, rc: number, opts: { count?: number; instructions?: ApInstruction[] } = {}): void {
    this.m.faultInject(apqn, rc, opts.count ?? 1, opts.instructions ? new Set(opts.instructions) : null);
  }

  /** While on, resets started on `apqn` never complete (spec 2.6 "sticky RC 02"). */
  setStickyReset(apqn: Apqn, on: boolean): void {
    this.m.faultSticky(apqn, on);
  }

  /** The adapter loses every request and reply on the queue (DQAP then sees RC 0x10 with E=1). */
  forgetRequests(apqn: Apqn): void {
    this.m.faultForget(apqn);
  }

  /** Change the RC 05 probability (profile faults.busyRate). */
  setBusyRate(p: number): void {
    if (!(p >= 0 && p <= 1)) throw new RangeError(`busy rate must be in 0..1: ${p}`);
    this.m.faultBusyRate(p);
  }
}

const EMPTY = new Uint8Array(0);

export class Machine {
  readonly profile: HostProfile;
  readonly facilities: Readonly<HostFacilities>;
  /** HMC/SE levers: add/remove adapters and domains, configure cards, check-stop. */
  readonly hmc: Hmc;
  readonly faults: MachineFaults;
  /** Effective id limits: Na/Nd with APXA, else 63/15. */
  readonly maxAdapterId: number;
  readonly maxDomainId: number;

  private readonly env: MachineEnv;
  private readonly rng: Prng;
  private readonly adapters: (AdapterState | undefined)[] = new Array(256);
  private readonly apm: ApMask;
  private readonly aqm: ApMask;
  private readonly adm: ApMask;
  private readonly queues = new Map<Apqn, QueueState>();
  /** Queues with requests or a running reset: the only ones nextEventTime has to look at. */
  private readonly active = new Set<QueueState>();
  private readonly sticky = new Set<Apqn>();
  private busyRate: number;
  private seq = 0;
  private responder: Responder = (r) => new Uint8Array(r.data);
  private readonly interruptListeners = new Set<(e: InterruptEvent) => void>();
  private readonly configListeners = new Set<(e: ConfigChangeEvent) => void>();

  /** The profile is re-validated (ProfileError if invalid) and copied; later edits to it have no effect. */
  constructor(profile: HostProfile, env: MachineEnv) {
    this.profile = parseProfile(profile);
    this.facilities = Object.freeze({ ...this.profile.facilities });
    this.env = env;
    this.rng = env.rng ?? new Prng(hashString(`apsim-hw:${profile.name}`));
    this.maxAdapterId = this.facilities.apxa ? profile.maxAdapterId : Math.min(63, profile.maxAdapterId);
    this.maxDomainId = this.facilities.apxa ? profile.maxDomainId : Math.min(15, profile.maxDomainId);
    for (const a of this.profile.adapters) {
      this.adapters[a.id] = { p: a, hwType: AP_TYPE_NUMBER[a.type], configured: a.configured, checkstopped: a.checkstopped };
    }
    // The installed adapters never change (the HMC configures them in and out): frozen,
    // a world snapshot does not compare 256 slots before every execution.
    Object.freeze(this.adapters);
    this.apm = maskFromIds(this.profile.config.adapters);
    this.aqm = maskFromIds(this.profile.config.usageDomains);
    this.adm = maskFromIds(this.profile.config.controlDomains);
    for (const s of this.profile.faults.stickyReset) this.sticky.add(mustParseApqn(s));
    this.busyRate = this.profile.faults.busyRate;
    this.hmc = new Hmc(this.hmcBackend());
    this.faults = new MachineFaults(this);
  }

  now(): number {
    return this.env.now();
  }

  // ---- listeners and events --------------------------------------------------------------------

  /** Called for every adapter interruption delivered by processEvents(). Returns an unsubscribe. */
  onInterrupt(cb: (e: InterruptEvent) => void): () => void {
    this.interruptListeners.add(cb);
    return () => this.interruptListeners.delete(cb);
  }

  /** Called synchronously when the QCI configuration changes (HMC add/remove). */
  onConfigChange(cb: (e: ConfigChangeEvent) => void): () => void {
    this.configListeners.add(cb);
    return () => this.configListeners.delete(cb);
  }

  /**
   * Earliest virtual time at which something observable happens: a reply becomes ready, a reset
   * completes, or an interruption is due (that one may be <= now if processEvents has not run yet).
   * undefined when nothing is pending.
   */
  nextEventTime(): number | undefined {
    const now = this.now();
    let t = Infinity;
    for (const q of this.active) {
      if (q.resetEnd !== null) {
        if (q.resetEnd > now && !this.sticky.has(q.apqn)) t = Math.min(t, q.resetEnd);
        else if (q.resetEnd <= now && !this.sticky.has(q.apqn)) q.resetEnd = null;
      }
      for (const r of q.requests) {
        if (r.readyAt > now) t = Math.min(t, r.readyAt);
        if (q.irq && !r.notified) t = Math.min(t, Math.max(r.readyAt, q.irq.enabledAt));
      }
      if (q.isQuiet()) this.active.delete(q);
    }
    return t === Infinity ? undefined : t;
  }

  /** Delivers every interruption due at now(), in time order. Returns how many were delivered. */
  processEvents(): number {
    const now = this.now();
    const due: { e: InterruptEvent; seq: number }[] = [];
    for (const q of this.active) {
      const irq = q.irq;
      if (!irq) continue;
      for (const r of q.requests) {
        const time = Math.max(r.readyAt, irq.enabledAt);
        if (r.notified || time > now) continue;
        r.notified = true;
        due.push({ e: { time, apqn: q.apqn, isc: irq.isc, nib: irq.nib, gisa: irq.gisa, gisc: irq.gisc, psmid: r.psmid }, seq: r.seq });
      }
    }
    due.sort((a, b) => a.e.time - b.e.time || a.seq - b.seq);
    for (const { e } of due) for (const cb of [...this.interruptListeners]) cb(e);
    return due.length;
  }

  /** Replaces the reply generator (undefined restores the echo responder). */
  setResponder(r: Responder | undefined): void {
    this.responder = r ?? ((req) => new Uint8Array(req.data));
  }

  // ---- facilities and configuration ------------------------------------------------------------

  /** STFLE facility bits the AP code tests: 12 QCI, 15 APFT, 65 AQIC, 76 MSAX3. */
  hasStfleFacility(bit: number): boolean {
    const f = this.facilities;
    switch (bit) {
      case 12:
        return f.ap && f.qci;
      case 15:
        return f.ap && f.apft;
      case 65:
        return f.ap && f.aqic;
      case 76:
        return f.msax3;
      default:
        return false;
    }
  }

  adapter(apid: number): AdapterInfo | undefined {
    const a = this.adapters[apid];
    if (!a) return undefined;
    const p = a.p;
    return {
      id: p.id,
      type: p.type,
      mode: p.mode,
      hwType: a.hwType,
      rawType: p.rawType,
      queueDepth: p.queueDepth,
      maxMessageSize: p.maxMessageSize,
      serialNumber: p.serialNumber,
      ep11ApiOrdinal: p.ep11ApiOrdinal,
      ep11FwVersion: p.ep11FwVersion,
      inConfig: testBit(this.apm, apid),
      configured: a.configured,
      checkstopped: a.checkstopped,
    };
  }

  /** Installed adapter ids, ascending (in the LPAR configuration or not). */
  installedAdapters(): number[] {
    const out: number[] = [];
    for (let i = 0; i < 256; i++) if (this.adapters[i]) out.push(i);
    return out;
  }

  /** Copies of the current QCI masks, without the facility check QCI itself does. */
  configMasks(): { apm: ApMask; aqm: ApMask; adm: ApMask } {
    return { apm: copyMask(this.apm), aqm: copyMask(this.aqm), adm: copyMask(this.adm) };
  }

  /**
   * SCLP "configure / deconfigure AP" as issued by the kernel for `cardXX/config`. Returns false
   * (SCLP error) when the adapter is not in the LPAR configuration.
   */
  sclpConfigureAp(apid: number, on: boolean): boolean {
    const a = this.adapters[apid];
    if (!a || !testBit(this.apm, apid)) return false;
    if (a.configured !== on) this.setCardConfigured(apid, on);
    return true;
  }

  inspectQueue(apqn: Apqn): QueueSnapshot {
    this.checkApqnValue(apqn);
    const q = this.queues.get(apqn);
    const now = this.now();
    if (!q) return { apqn, resetting: false, outstanding: 0, repliesReady: 0, irq: null };
    return {
      apqn,
      resetting: this.resetting(q, now),
      outstanding: q.requests.length,
      repliesReady: q.requests.filter((r) => r.readyAt <= now).length,
      irq: q.irq ? { isc: q.irq.isc, nib: q.irq.nib, gisa: q.irq.gisa, gisc: q.irq.gisc } : null,
    };
  }

  // ---- AP instructions -------------------------------------------------------------------------

  /** PQAP(QCI). Without the QCI facility: specification exception. */
  qci(): QciInfo {
    this.checkAp();
    if (!this.facilities.qci) throw new ProgramException('specification', 'PQAP(QCI) without the QCI facility');
    const f = this.facilities;
    return {
      apsc: f.apsc,
      apxa: f.apxa,
      qact: f.qact,
      rc8a: f.rc8a,
      apsb: f.apsb,
      na: this.profile.maxAdapterId,
      nd: this.profile.maxDomainId,
      apm: copyMask(this.apm),
      aqm: copyMask(this.aqm),
      adm: copyMask(this.adm),
    };
  }

  /** The 128-byte QCI block (spec 1.4). */
  qciBlock(): Uint8Array {
    return encodeQciBlock(this.qci());
  }

  /** PQAP(TAPQ). opts.t requests the facility word (needs APFT, else specification exception). */
  tapq(apqn: Apqn, opts: { t?: boolean } = {}): TapqResult {
    this.checkApqn(apqn);
    if (opts.t && !this.facilities.apft) throw new ProgramException('specification', 'TAPQ with T bit without APFT');
    const rc = this.gate(apqn, 'tapq', true);
    const a = this.adapters[apqnCard(apqn)];
    // GR2 is valid for RC 00, 02, 03, 04, 05 (spec 2.4).
    const infoValid = a !== undefined && (rc === 0 || rc === 2 || rc === 3 || rc === 4 || rc === 5);
    const hwinfo = infoValid ? this.hwinfo(a, !!opts.t) : 0n;
    if (rc !== 0) return { cc: 3, status: makeStatus(rc, { irqEnabled: this.irqFlag(apqn, rc) }), hwinfo };
    return { cc: 0, status: this.queueStatus(this.queues.get(apqn), 0), hwinfo };
  }

  /** PQAP(RAPQ): reset the queue. `f` (SE) is accepted and has no further effect here. */
  rapq(apqn: Apqn, _opts: { f?: boolean } = {}): ApResult {
    return this.reset(apqn, 'rapq');
  }

  /** PQAP(ZAPQ): reset and zeroize; always disables interruptions. */
  zapq(apqn: Apqn, _opts: { f?: boolean } = {}): ApResult {
    return this.reset(apqn, 'zapq');
  }

  /**
   * PQAP(AQIC). Enable: NIB 0 → RC 06; already enabled → RC 07. Disable of a disabled queue is RC 00.
   * Without facility 65: specification exception.
   */
  aqic(apqn: Apqn, ctrl: AqicControl, nib: number): ApResult {
    this.checkApqn(apqn);
    if (!this.facilities.aqic) throw new ProgramException('specification', 'PQAP(AQIC) without facility 65');
    if (!Number.isInteger(ctrl.isc) || ctrl.isc < 0 || ctrl.isc > 7) throw new RangeError(`AQIC isc must be 0..7: ${ctrl.isc}`);
    const rc = this.gate(apqn, 'aqic', false);
    if (rc !== 0) return { cc: 3, status: makeStatus(rc, { irqEnabled: this.irqFlag(apqn, rc) }) };
    const q = this.queue(apqn);
    if (ctrl.ir) {
      if (!Number.isFinite(nib) || nib <= 0) return this.result(q, AP_RESPONSE.INVALID_ADDRESS);
      if (q.irq) return this.result(q, AP_RESPONSE.OTHERWISE_CHANGED);
      q.irq = { isc: ctrl.isc, nib, gisa: ctrl.gisa ?? 0, gisc: ctrl.gisc ?? 0, enabledAt: this.now() };
      if (q.requests.length) this.active.add(q);
    } else {
      q.irq = null;
    }
    return this.result(q, 0);
  }

  /** PQAP(QACT): the compatible type (10..14) for this adapter; needs the QACT facility. */
  qact(apqn: Apqn): QactResult {
    this.checkApqn(apqn);
    if (!this.facilities.qact) throw new ProgramException('specification', 'PQAP(QACT) without QACT');
    const rc = this.gate(apqn, 'qact', false);
    const a = this.adapters[apqnCard(apqn)];
    const compatibleType = a && a.hwType >= AP_TYPE_NUMBER.CEX4 ? a.hwType : 0;
    return { cc: ccFor(rc), status: makeStatus(rc), compatibleType: rc === 0 ? compatibleType : 0 };
  }

  /** NQAP: enqueue a request (or one part of a multi-part request). */
  nqap(apqn: Apqn, psmid: bigint, msg: Uint8Array, opts: NqapOptions = {}): ApResult {
    this.checkApqn(apqn);
    const rc = this.gate(apqn, 'nqap', true);
    if (rc !== 0) return { cc: 3, status: makeStatus(rc, { irqEnabled: this.irqFlag(apqn, rc) }) };
    const a = this.adapters[apqnCard(apqn)]!;
    const q = this.queue(apqn);
    const special = opts.special ?? false;
    if (special && !this.facilities.apsc) return this.result(q, AP_RESPONSE.REQ_FAC_NOT_INST);
    if (opts.continuation && !q.partial) return this.result(q, AP_RESPONSE.NO_FIRST_PART);
    const prior = opts.continuation ? q.partial! : null;
    if (!opts.continuation) q.partial = null;
    if ((prior?.length ?? 0) + msg.length > a.p.maxMessageSize) {
      q.partial = null;
      return this.result(q, AP_RESPONSE.MESSAGE_TOO_BIG);
    }
    if (opts.domain !== undefined && opts.domain !== apqnDomain(apqn) && !(opts.domain >= 0 && opts.domain <= 255 && testBit(this.adm, opts.domain))) {
      q.partial = null;
      return this.result(q, AP_RESPONSE.INVALID_DOMAIN);
    }
    if (q.requests.length >= a.p.queueDepth) return this.result(q, AP_RESPONSE.Q_FULL);
    const part = new Uint8Array(msg);
    if (opts.lastPart === false) {
      if (prior) {
        prior.parts.push(part);
        prior.length += part.length;
      } else {
        q.partial = { psmid, special, parts: [part], length: part.length };
      }
      return this.result(q, 0);
    }
    let data = part;
    let isSpecial = special;
    if (prior) {
      data = new Uint8Array(prior.length + part.length);
      let off = 0;
      for (const p of [...prior.parts, part]) {
        data.set(p, off);
        off += p.length;
      }
      isSpecial = prior.special;
      q.partial = null;
    }
    const reply = this.responder({ apqn, psmid, data, special: isSpecial, adapter: this.adapter(a.p.id)! });
    const jitter = this.profile.timing.requestJitterNs > 0 ? this.rng.nextInt(Math.floor(this.profile.timing.requestJitterNs) + 1) : 0;
    const req: QueuedRequest = { psmid, reply, readyAt: this.now() + a.p.requestLatencyNs + jitter, seq: this.seq++, offset: 0, notified: false };
    q.requests.push(req);
    this.active.add(q);
    return this.result(q, 0);
  }

  /**
   * DQAP: dequeue the next ready reply (earliest ready first; replies are matched by PSMID by the
   * caller). A reply longer than bufferLength is received partially: cc 1, RC 00, `residual` bytes
   * stay with the adapter and the next DQAP continues the same reply.
   */
  dqap(apqn: Apqn, bufferLength = Infinity): DqapResult {
    this.checkApqn(apqn);
    const rc = this.gate(apqn, 'dqap', true);
    if (rc !== 0) return { cc: 3, status: makeStatus(rc, { irqEnabled: this.irqFlag(apqn, rc) }), residual: 0 };
    const q = this.queues.get(apqn);
    const now = this.now();
    const r = q?.nextReply(now);
    if (!q || !r) return { cc: 3, status: this.queueStatus(q, AP_RESPONSE.NO_PENDING_REPLY), residual: 0 };
    const remaining = r.reply.length - r.offset;
    const take = Math.min(remaining, Math.max(0, Math.floor(bufferLength)));
    const data = take === 0 ? EMPTY : r.reply.slice(r.offset, r.offset + take);
    if (take < remaining) {
      r.offset += take;
      return { cc: 1, status: this.queueStatus(q, 0), psmid: r.psmid, data, residual: remaining - take };
    }
    q.requests.splice(q.requests.indexOf(r), 1);
    return { cc: 0, status: this.queueStatus(q, 0), psmid: r.psmid, data, residual: 0 };
  }

  // ---- internals -------------------------------------------------------------------------------

  private checkAp(): void {
    if (!this.facilities.ap) throw new ProgramException('operation', 'AP instructions not installed');
  }

  private checkApqnValue(apqn: Apqn): void {
    if (!isApqn(apqn)) throw new RangeError(`not an APQN: ${apqn}`);
  }

  /** Operation exception without AP; specification exception for 8-bit ids without APXA. */
  private checkApqn(apqn: Apqn): void {
    this.checkAp();
    this.checkApqnValue(apqn);
    if (!this.facilities.apxa && (apqn & NON_APXA_APQN_MASK) !== 0) {
      throw new ProgramException('specification', `APQN ${formatApqn(apqn)} needs APXA`);
    }
  }

  private queue(apqn: Apqn): QueueState {
    let q = this.queues.get(apqn);
    if (!q) {
      q = new QueueState(apqn);
      this.queues.set(apqn, q);
    }
    return q;
  }

  private resetting(q: QueueState, now: number): boolean {
    if (q.resetEnd === null) return false;
    if (now < q.resetEnd || this.sticky.has(q.apqn)) return true;
    q.resetEnd = null;
    return false;
  }

  /**
   * The response code an instruction gets before doing its own work: configuration (01), SCLP
   * standby (03), check-stop (04), injected faults, random busy (05), running reset (02).
   */
  private gate(apqn: Apqn, instr: ApInstruction, mayBeBusy: boolean): number {
    const apid = apqnCard(apqn);
    const a = this.adapters[apid];
    if (!a || !testBit(this.apm, apid) || !testBit(this.aqm, apqnDomain(apqn))) return AP_RESPONSE.Q_NOT_AVAIL;
    if (!a.configured) return AP_RESPONSE.DECONFIGURED;
    if (a.checkstopped) return AP_RESPONSE.CHECKSTOPPED;
    const q = this.queues.get(apqn);
    if (q && q.faults.length) {
      const i = q.faults.findIndex((f) => f.instructions === null || f.instructions.has(instr));
      if (i >= 0) {
        const f = q.faults[i]!;
        if (--f.remaining <= 0) q.faults.splice(i, 1);
        return f.rc;
      }
    }
    if (mayBeBusy && this.busyRate > 0 && this.rng.chance(this.busyRate)) return AP_RESPONSE.BUSY;
    if (q && this.resetting(q, this.now())) return AP_RESPONSE.RESET_IN_PROGRESS;
    return 0;
  }

  /** I bit to report alongside a non-zero RC: meaningful only when the queue is reachable. */
  private irqFlag(apqn: Apqn, rc: number): boolean {
    if (rc !== AP_RESPONSE.RESET_IN_PROGRESS && rc !== AP_RESPONSE.BUSY) return false;
    return !!this.queues.get(apqn)?.irq;
  }

  private queueStatus(q: QueueState | undefined, rc: number): ApQueueStatus {
    if (!q) return makeStatus(rc, { queueEmpty: true });
    const depth = this.adapters[apqnCard(q.apqn)]!.p.queueDepth;
    const n = q.requests.length;
    return makeStatus(rc, {
      queueEmpty: n === 0,
      repliesWaiting: q.hasReadyReply(this.now()),
      queueFull: n >= depth,
      irqEnabled: q.irq !== null,
    });
  }

  private result(q: QueueState, rc: number): ApResult {
    return { cc: ccFor(rc), status: this.queueStatus(q, rc) };
  }

  private reset(apqn: Apqn, kind: 'rapq' | 'zapq'): ApResult {
    this.checkApqn(apqn);
    const rc = this.gate(apqn, kind, false);
    if (rc !== 0) return { cc: 3, status: makeStatus(rc, { irqEnabled: this.irqFlag(apqn, rc) }) };
    const q = this.queue(apqn);
    q.discardWork();
    if (kind === 'zapq' || this.profile.semantics.rapqDisablesInterrupts) q.irq = null;
    q.resetEnd = this.now() + this.adapters[apqnCard(apqn)]!.p.resetLatencyNs;
    this.active.add(q);
    return this.result(q, 0);
  }

  private hwinfo(a: AdapterState, t: boolean): bigint {
    // Only the adapter's static profile and T decide it: compute once per adapter.
    const cached = t ? a.hwinfoT : a.hwinfo;
    if (cached !== undefined) return cached;
    const v = this.computeHwinfo(a, t);
    if (t) a.hwinfoT = v;
    else a.hwinfo = v;
    return v;
  }

  private computeHwinfo(a: AdapterState, t: boolean): bigint {
    let fac = 0;
    if (t) {
      const modern = a.hwType >= AP_TYPE_NUMBER.CEX4;
      if (this.facilities.apsc && modern) fac |= AP_FUNC.APSC;
      if (modern) fac |= AP_FUNC.MEX4K | AP_FUNC.CRT4K;
      fac |= a.p.mode === 'cca' ? AP_FUNC.COPRO : a.p.mode === 'accel' ? AP_FUNC.ACCEL : AP_FUNC.EP11;
      if (this.facilities.apxa) fac |= AP_FUNC.APXA;
      if (a.p.type === 'CEX8') fac |= AP_FUNC.SLCF;
    }
    const ml = a.p.maxMessageSize === 12288 ? 0 : a.p.maxMessageSize / 4096;
    const nd = Math.min(255, this.maxDomainId + 1);
    return encodeHwinfo({ facilities: fac, at: a.p.rawType, nd, ml, qd: a.p.queueDepth - 1 });
  }

  /** Forget all state of the queues matching `pred` (they come back empty, reset, IRQ off). */
  private dropQueues(pred: (apqn: Apqn) => boolean): void {
    for (const [apqn, q] of this.queues) {
      if (!pred(apqn)) continue;
      this.queues.delete(apqn);
      this.active.delete(q);
    }
  }

  private setCardConfigured(apid: number, on: boolean): void {
    this.adapters[apid]!.configured = on;
    this.dropQueues((q) => apqnCard(q) === apid);
  }

  private hmcBackend(): HmcBackend {
    const maskOf = (kind: ConfigChangeKind) => (kind === 'adapter' ? this.apm : kind === 'usage-domain' ? this.aqm : this.adm);
    return {
      maxAdapterId: this.maxAdapterId,
      maxDomainId: this.maxDomainId,
      isInstalled: (apid) => this.adapters[apid] !== undefined,
      isInConfig: (kind, id) => testBit(maskOf(kind), id),
      setInConfig: (kind, id, on) => {
        assignBit(maskOf(kind), id, on);
        // Queues entering or leaving the configuration start afresh.
        if (kind === 'adapter') this.dropQueues((q) => apqnCard(q) === id);
        if (kind === 'usage-domain') this.dropQueues((q) => apqnDomain(q) === id);
        const e: ConfigChangeEvent = { time: this.now(), kind, id, added: on };
        for (const cb of [...this.configListeners]) cb(e);
      },
      setCardConfigured: (apid, on) => this.setCardConfigured(apid, on),
      isCardConfigured: (apid) => this.adapters[apid]!.configured,
      setCheckstop: (apid, on) => {
        this.adapters[apid]!.checkstopped = on;
        this.dropQueues((q) => apqnCard(q) === apid);
      },
      isCheckstopped: (apid) => this.adapters[apid]!.checkstopped,
    };
  }

  // Fault-injection hooks used by MachineFaults.
  /** @internal */
  faultInject(apqn: Apqn, rc: number, count: number, instructions: ReadonlySet<string> | null): void {
    this.checkApqnValue(apqn);
    if (!Number.isInteger(rc) || rc < 0 || rc > 255) throw new RangeError(`response code must be 0..255: ${rc}`);
    this.queue(apqn).faults.push({ rc, remaining: count, instructions });
  }

  /** @internal */
  faultSticky(apqn: Apqn, on: boolean): void {
    this.checkApqnValue(apqn);
    if (on) {
      this.sticky.add(apqn);
      return;
    }
    this.sticky.delete(apqn);
    const q = this.queues.get(apqn);
    // A reset held past its deadline completes now.
    if (q && q.resetEnd !== null) q.resetEnd = Math.max(q.resetEnd, this.now());
  }

  /** @internal */
  faultForget(apqn: Apqn): void {
    this.checkApqnValue(apqn);
    this.queues.get(apqn)?.discardWork();
  }

  /** @internal */
  faultBusyRate(p: number): void {
    this.busyRate = p;
  }
}
