// HMC / Support Element operations on the LPAR's AP configuration, and SCLP card configure /
// deconfigure. These are the "outside world" levers of the machine: tests and scenarios pull them
// to make adapters, domains or cards come and go under the running kernel.

import { HmcError } from './errors.js';

export type ConfigChangeKind = 'adapter' | 'usage-domain' | 'control-domain';

/** Primitive state changes the machine grants the HMC facade (see Machine's constructor). */
export interface HmcBackend {
  readonly maxAdapterId: number;
  readonly maxDomainId: number;
  isInstalled(apid: number): boolean;
  isInConfig(kind: ConfigChangeKind, id: number): boolean;
  /** Changes one QCI mask bit and raises the configuration-change notification. */
  setInConfig(kind: ConfigChangeKind, id: number, on: boolean): void;
  setCardConfigured(apid: number, on: boolean): void;
  isCardConfigured(apid: number): boolean;
  setCheckstop(apid: number, on: boolean): void;
  isCheckstopped(apid: number): boolean;
}

/**
 * Each method returns true if it changed something and false if the state already matched (no
 * notification then). Invalid requests (ids out of range, adapters not installed) throw HmcError.
 */
export class Hmc {
  constructor(private readonly m: HmcBackend) {}

  private adapterId(apid: number): void {
    if (!Number.isInteger(apid) || apid < 0 || apid > this.m.maxAdapterId) {
      throw new HmcError(`adapter id ${apid} out of range 0..${this.m.maxAdapterId}`);
    }
  }

  private installed(apid: number): void {
    this.adapterId(apid);
    if (!this.m.isInstalled(apid)) throw new HmcError(`adapter ${apid} is not installed in this machine`);
  }

  private domainId(d: number): void {
    if (!Number.isInteger(d) || d < 0 || d > this.m.maxDomainId) throw new HmcError(`domain ${d} out of range 0..${this.m.maxDomainId}`);
  }

  private change(kind: ConfigChangeKind, id: number, on: boolean): boolean {
    if (this.m.isInConfig(kind, id) === on) return false;
    this.m.setInConfig(kind, id, on);
    return true;
  }

  /** Dynamically add an installed adapter to the LPAR (QCI APM). Its queues start empty and reset. */
  addAdapter(apid: number): boolean {
    this.installed(apid);
    return this.change('adapter', apid, true);
  }

  /** Remove an adapter from the LPAR: its queues answer RC 01 and lose all work. */
  removeAdapter(apid: number): boolean {
    this.installed(apid);
    return this.change('adapter', apid, false);
  }

  addUsageDomain(d: number): boolean {
    this.domainId(d);
    return this.change('usage-domain', d, true);
  }

  removeUsageDomain(d: number): boolean {
    this.domainId(d);
    return this.change('usage-domain', d, false);
  }

  addControlDomain(d: number): boolean {
    this.domainId(d);
    return this.change('control-domain', d, true);
  }

  removeControlDomain(d: number): boolean {
    this.domainId(d);
    return this.change('control-domain', d, false);
  }

  /**
   * Configure a card on (standby → online) or off (→ standby, RC 03 on all its queues). The adapter
   * stays in QCI, so no configuration-change notification is raised. Same effect as SCLP.
   */
  configureCard(apid: number, on: boolean): boolean {
    this.installed(apid);
    if (this.m.isCardConfigured(apid) === on) return false;
    this.m.setCardConfigured(apid, on);
    return true;
  }

  /** Put a card into / out of check-stop (RC 04 on all its queues while on). */
  checkstop(apid: number, on: boolean): boolean {
    this.installed(apid);
    if (this.m.isCheckstopped(apid) === on) return false;
    this.m.setCheckstop(apid, on);
    return true;
  }
}
