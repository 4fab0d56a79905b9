// Matrix arithmetic and formats: rendering of matrix/guest_matrix/control_domains,
// ap_config parsing, the assign/unassign number parser, and the filters that
// derive the guest's AP configuration (shadow APCB) from the assigned matrix.
import { E } from '../kernel/errno.js';
import { PAGE_SIZE } from '../sysfs/kernfs.js';
import { type ApMask, newMask, maskEquals, testBit, clearBit, setBit, maskIds, formatMask, copyMask, maskAnd } from '../hw/mask.js';
import { apqn, type Apqn } from '../hw/apqn.js';
import { kstrtoull } from '../lib/kstrto.js';
import { hex2bitmap } from '../ap/mask_str.js';
import { Errno } from '../kernel/errno.js';
import { AP_RESPONSE } from '../hw/status.js';
import type { ApMatrix, MatrixMdev, MatrixDev, ApConfigInfo, VfioApQueue } from './private.js';

/** ap_config's text: three masks of 0x + 64 digits, two commas and a newline. */
export const AP_CONFIG_STRLEN = 3 * 66 + 3;

const hex = (n: number, w: number) => n.toString(16).padStart(w, '0');

/** IDs set in m up to and including max, ascending. */
function idsUpTo(m: ApMask, max: number): number[] {
  return maskIds(m).filter((id) => id <= max);
}

/**
 * vfio_ap_mdev_matrix_show(): "AA.DDDD" per APQN, or "AA." per adapter / ".DDDD" per
 * domain when the other mask is empty; capped at one page like scnprintf.
 */
export function matrix_show(m: ApMatrix): string {
  const apids = idsUpTo(m.apm, m.apm_max);
  const apqis = idsUpTo(m.aqm, m.aqm_max);
  let out = '';
  if (apids.length && apqis.length) {
    for (const a of apids) for (const d of apqis) out += `${hex(a, 2)}.${hex(d, 4)}\n`;
  } else if (apids.length) for (const a of apids) out += `${hex(a, 2)}.\n`;
  else if (apqis.length) for (const d of apqis) out += `.${hex(d, 4)}\n`;
  return out.length >= PAGE_SIZE ? out.slice(0, PAGE_SIZE - 1) : out;
}

/** control_domains_show(): one "%04lx" line per assigned control domain. */
export function control_domains_show(m: ApMatrix): string {
  return idsUpTo(m.adm, m.adm_max)
    .map((d) => `${hex(d, 4)}\n`)
    .join('');
}

/** ap_config_show(): "0x<apm>,0x<aqm>,0x<adm>\n" (201 characters). */
export function ap_config_show(m: ApMatrix): string {
  return `${formatMask(m.apm)},${formatMask(m.aqm)},${formatMask(m.adm)}\n`;
}

/**
 * The six assign/unassign attributes parse with kstrtoul(buf, 0): C prefixes,
 * one trailing newline, nothing else. Throws Errno EINVAL / ERANGE.
 */
export function parse_id(buf: string): number {
  const v = kstrtoull(buf, 0);
  if (typeof v === 'number') throw new Errno(-v);
  // Anything above 255 is out of every range check that follows; keep it as a number.
  return v > 0xffff_ffffn ? Number.MAX_SAFE_INTEGER : Number(v);
}

/**
 * parse_bitmap() x 3 for ap_config: strsep() on "," and "\n", each token an
 * ap_hex2bitmap() mask. A missing token or a bad mask is EINVAL.
 */
export function ap_config_parse(buf: string): { apm: ApMask; aqm: ApMask; adm: ApMask } {
  let rest: string | null = buf.slice(0, AP_CONFIG_STRLEN);
  const token = (): string => {
    if (rest === null) throw new Errno(E.EINVAL!, 'ap_config: fewer than three masks');
    let i = 0;
    while (i < rest.length && rest[i] !== ',' && rest[i] !== '\n') i++;
    const tok = rest.slice(0, i);
    rest = i < rest.length ? rest.slice(i + 1) : null;
    return tok;
  };
  const mask = (): ApMask => {
    const m = newMask();
    hex2bitmap(token(), m);
    return m;
  };
  const apm = mask();
  const aqm = mask();
  const adm = mask();
  return { apm, aqm, adm };
}

/** _queue_passable(): a queue whose last reset left RC 00, 03 or 04 may go to a guest. */
export function queue_passable(q: VfioApQueue | undefined): boolean {
  if (!q) return false;
  switch (q.reset_status.responseCode) {
    case AP_RESPONSE.NORMAL:
    case AP_RESPONSE.DECONFIGURED:
    case AP_RESPONSE.CHECKSTOPPED:
      return true;
    default:
      return false;
  }
}

/** vfio_ap_matrix_init() on an existing matrix: only the maxima follow info. */
export function matrix_reinit_max(m: ApMatrix, info: ApConfigInfo): void {
  m.apm_max = info.apxa ? info.na : 63;
  m.aqm_max = info.apxa ? info.nd : 15;
  m.adm_max = info.apxa ? info.nd : 15;
}

/**
 * vfio_ap_mdev_filter_matrix(): shadow = matrix ∩ host config, then every adapter
 * with an APQN that is not linked or not passable is dropped whole (the
 * architecture cannot express holes). Returns whether the shadow changed and the
 * adapters dropped that the guest had before.
 */
export function filter_matrix(md: MatrixDev, mdev: MatrixMdev): { changed: boolean; apm_filtered: ApMask } {
  const info = md.info;
  mdev.filterSeq = ++md.seq;
  const s = mdev.shadow_apcb;
  const prevApm = copyMask(s.apm);
  const prevAqm = copyMask(s.aqm);
  matrix_reinit_max(s, info);
  const apm_filtered = newMask();
  s.apm = maskAnd(mdev.matrix.apm, info.apm);
  s.aqm = maskAnd(mdev.matrix.aqm, info.aqm);
  const apqis = maskIds(s.aqm);
  for (const apid of maskIds(s.apm)) {
    for (const apqi of apqis) {
      if (!queue_passable(mdev.qtable.get(apqn(apid, apqi)))) {
        clearBit(s.apm, apid);
        if (testBit(prevApm, apid)) setBit(apm_filtered, apid);
        break;
      }
    }
  }
  return { changed: !maskEquals(prevApm, s.apm) || !maskEquals(prevAqm, s.aqm), apm_filtered };
}

/** vfio_ap_mdev_filter_cdoms(): shadow ADM = matrix ADM ∩ host ADM. */
export function filter_cdoms(mdev: MatrixMdev, info: ApConfigInfo): boolean {
  const prev = copyMask(mdev.shadow_apcb.adm);
  mdev.shadow_apcb.adm = maskAnd(mdev.matrix.adm, info.adm);
  return !maskEquals(prev, mdev.shadow_apcb.adm);
}

/** Every APQN of apm x aqm. */
export function apqns_of(apm: ApMask, aqm: ApMask): Apqn[] {
  const out: Apqn[] = [];
  const qs = maskIds(aqm);
  for (const a of maskIds(apm)) for (const d of qs) out.push(apqn(a, d));
  return out;
}
