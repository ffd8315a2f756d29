// UTC calendar periods for the daily and monthly token budgets. The Redis script computes the same ids and ends
// from the server's clock (src/limits/lua.ts); test/limits-memory.test.ts checks both agree across month ends.

const DAY_MS = 86_400_000

/** Days since 1970-01-01 (UTC). */
export const dayOf = (ms: number): number => Math.floor(ms / DAY_MS)

/** When the UTC day containing `ms` ends. */
export const dayEnd = (ms: number): number => (dayOf(ms) + 1) * DAY_MS

/** Months since 0000-01 (year * 12 + month index): one id per UTC calendar month. */
export const monthOf = (ms: number): number => {
  const d = new Date(ms)
  return d.getUTCFullYear() * 12 + d.getUTCMonth()
}

/** When the UTC month containing `ms` ends. */
export const monthEnd = (ms: number): number => {
  const d = new Date(ms)
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)
}
