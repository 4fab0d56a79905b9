// APQN (AP queue number) helpers. An APQN is the 16-bit queue id the kernel calls "qid":
// APID (card) in bits 8..15, APQI (domain) in bits 0..7 (spec 1.2). Names follow sysfs:
// "cardXX" and "XX.YYYY", lowercase hex.

/** 16-bit queue id: (apid << 8) | apqi. */
export type Apqn = number;

export const MAX_AP_ID = 255;

function checkId(what: string, id: number): void {
  if (!Number.isInteger(id) || id < 0 || id > MAX_AP_ID) throw new RangeError(`${what} out of range 0..255: ${id}`);
}

export function apqn(apid: number, apqi: number): Apqn {
  checkId('APID', apid);
  checkId('APQI', apqi);
  return (apid << 8) | apqi;
}

export function apqnCard(q: Apqn): number {
  return (q >> 8) & 0xff;
}

export function apqnDomain(q: Apqn): number {
  return q & 0xff;
}

export function isApqn(q: unknown): q is Apqn {
  return typeof q === 'number' && Number.isInteger(q) && q >= 0 && q <= 0xffff;
}

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

/** Two lowercase hex digits, as in "card0a". */
export function formatCardId(apid: number): string {
  checkId('APID', apid);
  return hex(apid, 2);
}

/** Four lowercase hex digits, as in "05.00ab" and vfio_ap's control_domains. */
export function formatDomainId(apqi: number): string {
  checkId('APQI', apqi);
  return hex(apqi, 4);
}

/** "cardXX" sysfs name. */
export function cardName(apid: number): string {
  return `card${formatCardId(apid)}`;
}

/** "XX.YYYY" sysfs queue name. */
export function formatApqn(q: Apqn): string {
  if (!isApqn(q)) throw new RangeError(`not an APQN: ${q}`);
  return `${hex(apqnCard(q), 2)}.${hex(apqnDomain(q), 4)}`;
}

const APQN_RE = /^([0-9a-fA-F]{1,2})\.([0-9a-fA-F]{1,4})$/;

/**
 * Parses "XX.YYYY" (hex, either case; 1-2 and 1-4 digits are accepted as lszcrypt does).
 * Returns undefined for anything else, including ids > 255.
 */
export function parseApqn(text: string): Apqn | undefined {
  const m = APQN_RE.exec(text);
  if (!m) return undefined;
  const apid = parseInt(m[1]!, 16);
  const apqi = parseInt(m[2]!, 16);
  if (apqi > MAX_AP_ID) return undefined;
  return (apid << 8) | apqi;
}

/** Like parseApqn but throws a RangeError naming the bad text. */
export function mustParseApqn(text: string): Apqn {
  const q = parseApqn(text);
  if (q === undefined) throw new RangeError(`not an APQN "XX.YYYY": ${JSON.stringify(text)}`);
  return q;
}

/** Sort comparator that orders APQNs by card then domain (numeric qid order). */
export function compareApqn(a: Apqn, b: Apqn): number {
  return a - b;
}
