// The Redis side of the limits engine: one Lua script per operation, so every admission and every settlement is
// one atomic step and one round trip (EVALSHA via ioredis `defineCommand`). The algorithm is the memory engine's
// (src/limits/memory.ts) on Redis types:
//   {K}:r  sorted set, request log: member = reservation id, score = admission time (ms)
//   {K}:t  sorted set, token log: member = "id:tokens", score = admission time; {K}:ts = sum of its tokens
//   {K}:c  sorted set, concurrency leases: member = reservation id, score = lease expiry (ms)
//   {K}:b  hash, budgets: d = UTC day id, dn = tokens that day, m = UTC month id, mn = tokens that month
// Time is the Redis server's (TIME), so replicas with skewed clocks still share one window; ARGV[1] adds a fixed
// offset that is 0 in production (tests move time forward with it). Every key a script touches is in KEYS, and all
// of a client key's keys share the hash tag {K}, so the scripts also run on Redis Cluster.

const prelude = `
local W = 60000
local DAY = 86400000
local function clock(offset)
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(offset)
end
-- Civil date from days since 1970-01-01 and back (H. Hinnant's algorithms), for UTC calendar months.
local function civil(days)
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m
end
local function days_from_civil(y, m)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = m > 2 and m - 3 or m + 9
  local doy = math.floor((153 * mp + 2) / 5)
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end
-- Month id (year * 12 + month index) and the month's end (ms).
local function month_of(now)
  local y, m = civil(math.floor(now / DAY))
  local ny, nm = y, m + 1
  if nm > 12 then ny = y + 1; nm = 1 end
  return y * 12 + m - 1, days_from_civil(ny, nm) * DAY
end
local function amount(member) return tonumber(string.match(member, ':(%d+)$')) end
-- Drops the token entries that left the window; returns the sum of the rest.
local function prune_tokens(tk, sk, now)
  local old = redis.call('ZRANGEBYSCORE', tk, '-inf', now - W)
  if #old > 0 then redis.call('ZREMRANGEBYSCORE', tk, '-inf', now - W) end
  if redis.call('EXISTS', tk) == 0 then
    redis.call('DEL', sk)
    return 0
  end
  local sum = tonumber(redis.call('GET', sk) or '0')
  if #old > 0 then
    for i = 1, #old do sum = sum - amount(old[i]) end
    redis.call('SET', sk, sum, 'PX', W)
  end
  return sum
end
local function oldest(key)
  local e = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if #e == 0 then return -1 end
  return tonumber(e[2])
end
local function budgets(bk, now)
  local day = math.floor(now / DAY)
  local month, mend = month_of(now)
  local b = redis.call('HMGET', bk, 'd', 'dn', 'm', 'mn')
  local dn, mn = 0, 0
  if tonumber(b[1]) == day then dn = tonumber(b[2]) end
  if tonumber(b[3]) == month then mn = tonumber(b[4]) end
  return day, (day + 1) * DAY, dn, month, mend, mn
end
`

/**
 * KEYS: r, t, ts, c, b. ARGV: offset, rpm, tpm, concurrent, tokens/day, tokens/month (-1: unlimited), estimate,
 * reservation id, lease TTL (ms).
 * Returns { refused (0, or 1 concurrent, 2 rpm, 3 tpm, 4 day, 5 month), retry ms, now, requests, oldest request,
 * tokens, oldest token entry, concurrent, day tokens, day end, month tokens, month end, tpm need, day id,
 * day need, month id, month need }.
 */
export const admitLua = `${prelude}
local now = clock(ARGV[1])
local rpm, tpm, conc = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local tpd, tpmo, est = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local id, ttl = ARGV[8], tonumber(ARGV[9])
local rcount, tsum, ccount = 0, 0, 0
if rpm >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - W)
  rcount = redis.call('ZCARD', KEYS[1])
end
if tpm >= 0 then tsum = prune_tokens(KEYS[2], KEYS[3], now) end
if conc >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
  ccount = redis.call('ZCARD', KEYS[4])
end
local day, dend, dn, month, mend, mn = budgets(KEYS[5], now)
local function fits(used, n, limit) return used < limit and used + n <= limit end
local refused, retry = 0, 0
local function refuse(code, ms)
  if refused == 0 or ms > retry then
    refused = code
    retry = ms
  end
end
if conc >= 0 and ccount >= conc then refuse(1, 1000) end
if rpm >= 0 and rcount >= rpm then
  local i = rcount - rpm
  if i < rcount then
    local e = redis.call('ZRANGE', KEYS[1], i, i, 'WITHSCORES')
    refuse(2, tonumber(e[2]) + W - now)
  else
    refuse(2, W)
  end
end
local tneed, dneed, mneed = -1, -1, -1
if tpm >= 0 then
  tneed = math.min(est, tpm)
  if not fits(tsum, tneed, tpm) then
    -- Walk the oldest entries until enough tokens have left the window (in batches: refusals stay cheap).
    local rem, found, start = tsum, W, 0
    while found == W do
      local e = redis.call('ZRANGE', KEYS[2], start, start + 127, 'WITHSCORES')
      if #e == 0 then break end
      for i = 1, #e, 2 do
        rem = rem - amount(e[i])
        if fits(rem, tneed, tpm) then
          found = tonumber(e[i + 1]) + W - now
          break
        end
      end
      start = start + 128
    end
    refuse(3, found)
  end
end
if tpd >= 0 then
  dneed = math.min(est, tpd)
  if not fits(dn, dneed, tpd) then refuse(4, dend - now) end
end
if tpmo >= 0 then
  mneed = math.min(est, tpmo)
  if not fits(mn, mneed, tpmo) then refuse(5, mend - now) end
end
if refused == 0 then
  if rpm >= 0 then
    redis.call('ZADD', KEYS[1], now, id)
    redis.call('PEXPIRE', KEYS[1], W)
    rcount = rcount + 1
  end
  if tpm >= 0 then
    redis.call('ZADD', KEYS[2], now, id .. ':' .. tneed)
    redis.call('PEXPIRE', KEYS[2], W)
    tsum = tsum + tneed
    redis.call('SET', KEYS[3], tsum, 'PX', W)
  end
  if conc >= 0 then
    redis.call('ZADD', KEYS[4], now + ttl, id)
    redis.call('PEXPIRE', KEYS[4], ttl)
    ccount = ccount + 1
  end
  if tpd >= 0 or tpmo >= 0 then
    if tpd >= 0 then dn = dn + dneed end
    if tpmo >= 0 then mn = mn + mneed end
    redis.call('HSET', KEYS[5], 'd', day, 'dn', dn, 'm', month, 'mn', mn)
    redis.call('PEXPIREAT', KEYS[5], mend + DAY)
  end
end
local toldest = -1
if tpm >= 0 then toldest = oldest(KEYS[2]) end
local roldest = -1
if rpm >= 0 then roldest = oldest(KEYS[1]) end
return { refused, retry, now, rcount, roldest, tsum, toldest, ccount, dn, dend, mn, mend, tneed, day, dneed, month, mneed }
`

/**
 * KEYS: t, ts, c, b. ARGV: id, admission time, tpm need (-1: none), exact tokens, day id, day need, month id,
 * month need, "1" when a concurrency lease is held. Replaces the reservation's estimates by the exact figure where
 * they are still counted (the minute window or the same UTC day/month) and drops the lease.
 */
export const settleLua = `
local id, exact, tneed = ARGV[1], tonumber(ARGV[4]), tonumber(ARGV[3])
if tneed >= 0 and redis.call('ZREM', KEYS[1], id .. ':' .. ARGV[3]) == 1 then
  redis.call('ZADD', KEYS[1], ARGV[2], id .. ':' .. ARGV[4])
  redis.call('INCRBY', KEYS[2], exact - tneed)
end
if ARGV[9] == '1' then redis.call('ZREM', KEYS[3], id) end
local dneed, mneed = tonumber(ARGV[6]), tonumber(ARGV[8])
if dneed >= 0 or mneed >= 0 then
  local b = redis.call('HMGET', KEYS[4], 'd', 'dn', 'm', 'mn')
  if dneed >= 0 and b[1] == ARGV[5] then
    redis.call('HSET', KEYS[4], 'dn', math.max(0, tonumber(b[2]) + exact - dneed))
  end
  if mneed >= 0 and b[3] == ARGV[7] then
    redis.call('HSET', KEYS[4], 'mn', math.max(0, tonumber(b[4]) + exact - mneed))
  end
end
return 1
`

/** KEYS: c. ARGV: offset, lease TTL, ids of the live requests holding a lease: extends each lease. */
export const refreshLua = `${prelude}
local now = clock(ARGV[1])
local ttl = tonumber(ARGV[2])
for i = 3, #ARGV do redis.call('ZADD', KEYS[1], now + ttl, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ttl)
return #ARGV - 2
`

/**
 * KEYS: r, t, ts, c, b. ARGV: offset. Prunes, then returns { now, requests, oldest request, tokens, oldest token
 * entry, concurrent, day tokens, day end, month tokens, month end }.
 */
export const inspectLua = `${prelude}
local now = clock(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - W)
local tsum = prune_tokens(KEYS[2], KEYS[3], now)
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
local day, dend, dn, month, mend, mn = budgets(KEYS[5], now)
return { now, redis.call('ZCARD', KEYS[1]), oldest(KEYS[1]), tsum, oldest(KEYS[2]), redis.call('ZCARD', KEYS[4]),
  dn, dend, mn, mend }
`
