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
-- ARGV[1], ARGV[2]   n * T: the tokens asked for times the period (s, ns)
-- ARGV[3], ARGV[4]   b * T: the burst times the period, the bucket's length (s, ns)
-- ARGV[5]            milliseconds the key outlives the instant its bucket is full again
-- ARGV[6], ARGV[7]   now (s, ns) on the caller's clock; absent: Redis TIME
--
-- Reply: 1 when it passed; when it did not, {s, ns}: how long until it would pass (the
-- earliest instant minus now), or 0 when it never can (past 2^64 - 1 ns). A rejection
-- writes nothing.
--
-- It is written for speed, measured in instructions per call (the bench in
-- tests/bench.rs): three `redis.call`s (TIME, GET, SET … PX) are most of its cost, then
-- each string <-> number conversion (strtod, sprintf). So numbers are read once by
-- arithmetic coercion (`x + 0`: one strtod, where `tonumber` makes two), the arithmetic is
-- inline (no closures built per call), the TTL goes to SET as a string formatted with `%d`
-- (a number argument would be formatted with `%.17g`), and a pass answers one integer.
local G = 1000000000
local now_s, now_ns
if ARGV[6] then
  now_s, now_ns = ARGV[6] + 0, ARGV[7] + 0
else
  -- Before Redis 5 a script that reads TIME must replicate its effects, not itself. Redis 7
  -- (which first defines REDIS_VERSION_NUM; Valkey too) only replicates effects, and the
  -- call, deprecated there, costs a few microseconds per check: skip it.
  if redis.REDIS_VERSION_NUM == nil and redis.replicate_commands then
    redis.replicate_commands()
  end
  local t = redis.call('TIME')
  now_s, now_ns = t[1] + 0, t[2] * 1000
end
local key = KEYS[1]

-- s, ns := max(TAT, now); a missing key is a full bucket (TAT 0).
local s, ns = now_s, now_ns
local v = redis.call('GET', key)
if v then
  local l = #v
  if l == 0 or l > 20 or string.find(v, '%D') then
    return redis.error_reply('ERR bulwark: the key ' .. key .. ' does not hold a GCRA instant')
  end
  local tat_s, tat_ns = 0, 0
  if l > 9 then
    tat_s, tat_ns = string.sub(v, 1, l - 9) + 0, string.sub(v, l - 8) + 0
  else
    tat_ns = v + 0
  end
  if tat_s > s or (tat_s == s and tat_ns > ns) then
    s, ns = tat_s, tat_ns
  end
end

-- s, ns := the new TAT, max(TAT, now) + n*T; past 2^64 - 1 ns it never passes (as the core
-- saturates).
s, ns = s + ARGV[1], ns + ARGV[2]
if ns >= G then
  s, ns = s + 1, ns - G
end
if s > 18446744073 or (s == 18446744073 and ns > 709551615) then
  return 0
end

-- a := new TAT - b*T, the earliest instant it passes (below zero: at once, as the core's
-- saturating subtraction); it passes when a <= now.
local a_s, a_ns = s - ARGV[3], ns - ARGV[4]
if a_ns < 0 then
  a_s, a_ns = a_s - 1, a_ns + G
end
if a_s > now_s or (a_s == now_s and a_ns > now_ns) then
  a_s, a_ns = a_s - now_s, a_ns - now_ns
  if a_ns < 0 then
    a_s, a_ns = a_s - 1, a_ns + G
  end
  return {a_s, a_ns}
end

-- Passed: store the new TAT. The key lives until its bucket is full again (new TAT - now,
-- never below zero, rounded up to whole milliseconds) plus the slack; a missing key is a
-- full bucket, so the expiry loses nothing and Redis holds only the keys in use.
local d_s, d_ns = s - now_s, ns - now_ns
if d_ns < 0 then
  d_s, d_ns = d_s - 1, d_ns + G
end
local value
if s > 0 then
  value = string.format('%d%09d', s, ns)
else
  value = string.format('%d', ns)
end
redis.call('SET', key, value, 'PX',
  string.format('%d', d_s * 1000 + math.ceil(d_ns / 1000000) + ARGV[5]))
return 1
