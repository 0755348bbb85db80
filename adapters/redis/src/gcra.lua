-- bulwark-redis: one GCRA step on one key, atomically (the core's `rate_limiter::gcra`).
--
-- Instants and durations are nanoseconds, each held as two exact Lua numbers: whole seconds
-- and the nanoseconds below them (0 <= ns < 1e9). Lua numbers are doubles, exact only up to
-- 2^53; one number of nanoseconds would lose precision past 2^53 ns (104 days after the
-- clock's origin, long before Unix time), but as two parts every value of the core's range
-- (0 to 2^64 - 1 ns) is exact: the seconds stay below 2^35. Only +, -, comparisons and one
-- division by 1e6 (the TTL's milliseconds) are done on them.
--
-- KEYS[1]            the key; its value is the theoretical arrival time (TAT) in decimal ns
-- ARGV[1], ARGV[2]   now (s, ns) on the caller's clock; ARGV[1] == '' reads Redis TIME
-- ARGV[3], ARGV[4]   n * T: the tokens asked for times the period (s, ns)
-- ARGV[5], ARGV[6]   b * T: the burst times the period, the bucket's length (s, ns)
-- ARGV[7]            milliseconds the key outlives the instant its bucket is full again
--
-- Reply {pass, at_s, at_ns, now_s, now_ns}: pass = 1 with `at` the new TAT, or pass = 0 with
-- `at` the earliest instant the call would pass (2^64 - 1 ns: never). A rejection writes
-- nothing.
local G = 1000000000
local MAX_S, MAX_NS = 18446744073, 709551615 -- 2^64 - 1 ns

local function less(as, an, bs, bn)
  return as < bs or (as == bs and an < bn)
end

local function add(as, an, bs, bn)
  local s, n = as + bs, an + bn
  if n >= G then
    return s + 1, n - G
  end
  return s, n
end

-- a - b, saturating at zero
local function sub(as, an, bs, bn)
  if less(as, an, bs, bn) then
    return 0, 0
  end
  local s, n = as - bs, an - bn
  if n < 0 then
    return s - 1, n + G
  end
  return s, n
end

local now_s, now_ns
if ARGV[1] == '' then
  -- Before Redis 5 a script that reads TIME must replicate its effects, not itself. Redis 7
  -- (which first defines REDIS_VERSION_NUM; Valkey too) only replicates effects, and the
  -- call, deprecated there, costs a few microseconds per check: skip it.
  if redis.REDIS_VERSION_NUM == nil and redis.replicate_commands then
    redis.replicate_commands()
  end
  local t = redis.call('TIME')
  now_s, now_ns = tonumber(t[1]), tonumber(t[2]) * 1000
else
  now_s, now_ns = tonumber(ARGV[1]), tonumber(ARGV[2])
end
local inc_s, inc_ns = tonumber(ARGV[3]), tonumber(ARGV[4])
local len_s, len_ns = tonumber(ARGV[5]), tonumber(ARGV[6])

-- A missing key is a full bucket: TAT 0.
local tat_s, tat_ns = 0, 0
local v = redis.call('GET', KEYS[1])
if v then
  if #v > 20 or not string.match(v, '^%d+$') then
    return redis.error_reply('ERR bulwark: the key ' .. KEYS[1] .. ' does not hold a GCRA instant')
  end
  if #v > 9 then
    tat_s, tat_ns = tonumber(string.sub(v, 1, -10)), tonumber(string.sub(v, -9))
  else
    tat_ns = tonumber(v)
  end
end

-- new_tat = max(tat, now) + n*T; past 2^64 - 1 ns it never passes (as the core saturates).
local new_s, new_ns = tat_s, tat_ns
if less(tat_s, tat_ns, now_s, now_ns) then
  new_s, new_ns = now_s, now_ns
end
new_s, new_ns = add(new_s, new_ns, inc_s, inc_ns)
if less(MAX_S, MAX_NS, new_s, new_ns) then
  return {0, MAX_S, MAX_NS, now_s, now_ns}
end

-- allow_at = new_tat - b*T; it passes when allow_at <= now.
local at_s, at_ns = sub(new_s, new_ns, len_s, len_ns)
if less(now_s, now_ns, at_s, at_ns) then
  return {0, at_s, at_ns, now_s, now_ns}
end

-- Passed: store the new TAT. The key lives until its bucket is full again (new_tat - now,
-- rounded up to whole milliseconds) plus the slack; a missing key is a full bucket, so the
-- expiry loses nothing and Redis holds only the keys in use.
local d_s, d_ns = sub(new_s, new_ns, now_s, now_ns)
local ttl = d_s * 1000 + math.ceil(d_ns / 1000000) + tonumber(ARGV[7])
local value
if new_s > 0 then
  value = string.format('%d%09d', new_s, new_ns)
else
  value = string.format('%d', new_ns)
end
redis.call('SET', KEYS[1], value, 'PX', ttl)
return {1, new_s, new_ns, now_s, now_ns}
