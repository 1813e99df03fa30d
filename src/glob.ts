/**
 * Globs with `*` (any run of characters, line breaks included) and `?` (one character), anchored: alert kinds in
 * routes, key names in rotation overrides and exemptions. Matched by a two-pointer walk that remembers only the last
 * `*`, so the time is at most glob length × name length: names come from the organization, and a compiled regex
 * (`^.*a.*a.*b$`) backtracks for over a minute on a 5,000-character name.
 */
export function matchesGlob(glob: string, value: string): boolean {
  const g = [...glob];
  const v = [...value];
  let gi = 0;
  let vi = 0;
  let star = -1;
  let resume = 0;
  while (vi < v.length) {
    if (gi < g.length && g[gi] !== '*' && (g[gi] === '?' || g[gi] === v[vi])) {
      gi++;
      vi++;
    } else if (gi < g.length && g[gi] === '*') {
      star = gi++;
      resume = vi;
    } else if (star >= 0) {
      // let the last `*` take one more character and try the rest again from there
      gi = star + 1;
      vi = ++resume;
    } else {
      return false;
    }
  }
  while (gi < g.length && g[gi] === '*') gi++;
  return gi === g.length;
}

// C0 and C1 controls (line breaks, tabs, escapes, DEL) and the Unicode line and paragraph separators
const CONTROL_RUN = /[\p{Cc}\u2028\u2029]+/gu;
// zero-width and bidirectional format characters: invisible, so a reader does not see them in the name
const FORMAT = /\p{Cf}/gu;

/**
 * A name as a person reads it on one line: each run of control characters becomes one space, invisible format
 * characters go, and the ends are trimmed. Policy globs and names are matched against this, so a line break or a
 * zero-width space in a key's name cannot take it out of a `ci-*` override it visibly belongs to.
 */
export function singleLineName(name: string): string {
  return name.replace(CONTROL_RUN, ' ').replace(FORMAT, '').trim();
}
