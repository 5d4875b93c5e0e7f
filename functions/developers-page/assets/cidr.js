// IP allowlist entries checked as they are typed, by the API's rules: an IPv4 or IPv6
// address or CIDR, no host bits set, never /0 (the API checks again and has the last word).

function parseV4(text) {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let value = 0n;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || (part.length > 1 && part[0] === '0')) return null;
    const octet = Number(part);
    if (octet > 255) return null;
    value = (value << 8n) | BigInt(octet);
  }
  return value;
}

function parseV6(text) {
  if (!/^[0-9A-Fa-f:.]+$/.test(text)) return null;
  let groups = [];
  let tail = text;
  // An embedded IPv4 address in the last 32 bits (::ffff:192.0.2.1).
  const dotted = tail.match(/^(.*:)(\d+\.\d+\.\d+\.\d+)$/);
  let v4 = null;
  if (dotted) {
    v4 = parseV4(dotted[2]);
    if (v4 === null) return null;
    tail = dotted[1].endsWith('::') ? dotted[1] : dotted[1].slice(0, -1);
  }
  const halves = tail.split('::');
  if (halves.length > 2) return null;
  const read = (half) => (half === '' ? [] : half.split(':'));
  const head = read(halves[0]);
  const rest = halves.length === 2 ? read(halves[1]) : [];
  if ([...head, ...rest].some((g) => !/^[0-9A-Fa-f]{1,4}$/.test(g))) return null;
  const wanted = v4 === null ? 8 : 6;
  const present = head.length + rest.length;
  if (halves.length === 2) {
    if (present >= wanted) return null;
    groups = [...head, ...Array(wanted - present).fill('0'), ...rest];
  } else {
    if (present !== wanted) return null;
    groups = head;
  }
  let value = 0n;
  for (const group of groups) value = (value << 16n) | BigInt(parseInt(group, 16));
  if (v4 !== null) value = (value << 32n) | v4;
  return value;
}

function formatV4(value) {
  return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 255n)).join('.');
}

function formatV6(value) {
  const groups = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(((value >> shift) & 0xffffn).toString(16));
  // The longest run of zero groups (two or more) becomes "::".
  let best = [-1, 0];
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i += 1;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j += 1;
    if (j - i > best[1] && j - i > 1) best = [i, j - i];
    i = j;
  }
  if (best[0] < 0) return groups.join(':');
  return `${groups.slice(0, best[0]).join(':')}::${groups.slice(best[0] + best[1]).join(':')}`;
}

// null when `entry` is a valid allowlist entry, else what is wrong with it.
export function cidrProblem(entry) {
  const [address, prefixText, extra] = entry.split('/');
  const syntax = `"${entry}" is not a CIDR such as 203.0.113.0/24 or 2001:db8::/32`;
  if (extra !== undefined) return syntax;
  const v4 = parseV4(address);
  const v6 = v4 === null ? parseV6(address) : null;
  if (v4 === null && v6 === null) return syntax;
  const bits = v4 !== null ? 32 : 128;
  let prefix = bits;
  if (prefixText !== undefined) {
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > bits) return syntax;
    prefix = Number(prefixText);
  }
  const value = v4 !== null ? v4 : v6;
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  if ((value & hostMask) !== 0n) {
    const network = value & ~hostMask;
    const mapped = v6 !== null && prefix >= 96 && network >> 32n === 0xffffn;
    const shown = v4 !== null
      ? `${formatV4(network)}/${prefix}`
      : mapped
        ? `${formatV4(network & 0xffffffffn)}/${prefix - 96}`
        : `${formatV6(network)}/${prefix}`;
    return `"${entry}" has host bits set; did you mean ${shown}?`;
  }
  const mappedAll = v6 !== null && prefix === 96 && value >> 32n === 0xffffn;
  if (prefix === 0 || mappedAll) {
    return `"${entry}" allows every address; leave the allowlist empty to allow all`;
  }
  return null;
}

// The entries of a textarea (one a line, blank lines ignored) and the first problem.
export function allowlistEntries(text) {
  const lines = text.split('\n').map((line, index) => [index + 1, line.trim()]);
  const filled = lines.filter(([, line]) => line !== '');
  const entries = filled.map(([, line]) => line);
  for (const [number, entry] of filled) {
    const problem = cidrProblem(entry);
    if (problem) return { entries, problem: `Line ${number}: ${problem}${problem.endsWith("?") ? "" : "."}` };
  }
  if (entries.length > 100) return { entries, problem: 'An allowlist takes at most 100 entries.' };
  return { entries, problem: null };
}
