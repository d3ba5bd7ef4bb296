"""The Lua scripts that change shared state: each decision (first subscriber anywhere, a user's
last connection anywhere...) is taken inside one script, so exactly one node sees it.

Key layout, all under one app's base key `{prefix}:{{{app_id}}}` (the hash tag keeps an app's keys
in one Cluster slot, which multi-key scripts need):

    base:conns                    HASH node -> open connections of the app on that node
    base:channels                 HASH channel -> subscriptions in the whole cluster
    base:presence:{channel}       HASH user -> connections of the user on the channel (cluster)
    base:members:{channel}        HASH user -> user_info JSON (first connection's)
    base:users                    HASH user -> signed-in connections (cluster)
    base:node:{node}:channels     HASH channel -> this node's share of `channels`
    base:node:{node}:presence     HASH "channel\\0user" -> this node's share of `presence`
    base:node:{node}:users        HASH user -> this node's share of `users`
    base:cache:{channel}          STRING last event of a cache channel, with the app's TTL
    base:count-sent:{channel}     STRING, 5 s TTL: a throttled subscription count went out

The per-node hashes are what make a dead node's share removable (`DROP_NODE`) and what a node
rewrites after Redis lost its data (`REGISTER`). Every script gets the base key as KEYS[1] and
builds the others from it: they share its hash tag, hence its slot.
"""

from __future__ import annotations

_HELPERS = """
local base = KEYS[1]
local function k(...) return table.concat({base, ...}, ':') end
local function dec(hash, field, by)
  local left = redis.call('HINCRBY', hash, field, -by)
  if left <= 0 then redis.call('HDEL', hash, field) end
  return left
end
"""

# ARGV: node, channel, presence ('1'/'0'), user, user_info JSON, max members.
# Returns {-1} when the presence channel is full, else {total, first, roster (flat) or nil}.
JOIN = _HELPERS + """
local node, ch, presence, user = ARGV[1], ARGV[2], ARGV[3] == '1', ARGV[4]
local pres, members = k('presence', ch), k('members', ch)
if presence and redis.call('HEXISTS', pres, user) == 0
    and redis.call('HLEN', members) >= tonumber(ARGV[6]) then
  return {-1}
end
local total = redis.call('HINCRBY', k('channels'), ch, 1)
redis.call('HINCRBY', k('node', node, 'channels'), ch, 1)
if not presence then return {total, 0} end
local n = redis.call('HINCRBY', pres, user, 1)
redis.call('HINCRBY', k('node', node, 'presence'), ch .. '\\0' .. user, 1)
if n == 1 then redis.call('HSET', members, user, ARGV[5]) end
return {total, n == 1 and 1 or 0, redis.call('HGETALL', members)}
"""

# ARGV: node, channel, presence ('1'/'0'), user.
# Returns {total left (-1: the channel was unknown, e.g. Redis lost its data), last}.
LEAVE = _HELPERS + """
local node, ch, presence, user = ARGV[1], ARGV[2], ARGV[3] == '1', ARGV[4]
local channels = k('channels')
local known = redis.call('HEXISTS', channels, ch) == 1
dec(k('node', node, 'channels'), ch, 1)
local total = -1
if known then total = math.max(dec(channels, ch, 1), 0) end
local last = 0
if presence then
  dec(k('node', node, 'presence'), ch .. '\\0' .. user, 1)
  local pres = k('presence', ch)
  if redis.call('HEXISTS', pres, user) == 1 and dec(pres, user, 1) <= 0 then
    redis.call('HDEL', k('members', ch), user)
    last = 1
  end
end
return {total, last}
"""

# ARGV: node, delta. Returns the app's connections in the whole cluster.
CONNECTIONS = _HELPERS + """
local conns = k('conns')
if tonumber(ARGV[2]) >= 0 then
  redis.call('HINCRBY', conns, ARGV[1], ARGV[2])
else
  dec(conns, ARGV[1], -tonumber(ARGV[2]))
end
local total = 0
for _, v in ipairs(redis.call('HVALS', conns)) do total = total + tonumber(v) end
return total
"""

# ARGV: node, user, delta (1 or -1), then the watchlist's user ids.
# Returns {the user's connections left (-1: unknown user), flags: is each watched user online}.
SIGN = _HELPERS + """
local node, user, delta = ARGV[1], ARGV[2], tonumber(ARGV[3])
local users, mine = k('users'), k('node', node, 'users')
local n
if delta > 0 then
  n = redis.call('HINCRBY', users, user, delta)
  redis.call('HINCRBY', mine, user, delta)
else
  dec(mine, user, -delta)
  if redis.call('HEXISTS', users, user) == 0 then return {-1, {}} end
  n = math.max(dec(users, user, -delta), 0)
end
local online = {}
for i = 4, #ARGV do online[#online + 1] = redis.call('HEXISTS', users, ARGV[i]) end
return {n, online}
"""

# ARGV: node, mode ('drop' or 'register'), and for 'register' the node's state as JSON:
#   {"conns": n, "channels": [[ch, n]...], "presence": [[ch, user, n, info]...],
#    "users": [[user, n]...]}
# Removes everything `node` contributed; 'register' then adds the given state back.
# 'drop' returns what the removal decided, for the events: {vacated channels, flat
# [channel, user]... whose last connection it was, users now offline, flat [channel, count]...
# of channels still occupied}. 'register' returns what the addition decided, the other way
# round, net of what the removal decided: {channels now occupied, flat [channel, user]... now
# present and not before, users now online, flat [channel, user]... present before and not
# any more, 1 if Redis still held a share of `node` (else 0: it lost its data, or the node was
# cleaned up as dead)}.
NODE_STATE = _HELPERS + """
local node, mode = ARGV[1], ARGV[2]
local vacated, removed, offline, changed = {}, {}, {}, {}
local held = redis.call('EXISTS', k('node', node, 'channels'), k('node', node, 'presence'),
                        k('node', node, 'users')) + redis.call('HEXISTS', k('conns'), node)
local channels = k('channels')
local mine = k('node', node, 'channels')
local flat = redis.call('HGETALL', mine)
for i = 1, #flat, 2 do
  local ch = flat[i]
  if redis.call('HEXISTS', channels, ch) == 1 then
    local left = dec(channels, ch, tonumber(flat[i + 1]))
    if left <= 0 then vacated[#vacated + 1] = ch
    else changed[#changed + 1] = ch; changed[#changed + 1] = left end
  end
end
redis.call('DEL', mine)
mine = k('node', node, 'presence')
flat = redis.call('HGETALL', mine)
for i = 1, #flat, 2 do
  local field = flat[i]
  local cut = string.find(field, '\\0', 1, true)
  local ch, user = string.sub(field, 1, cut - 1), string.sub(field, cut + 1)
  local pres = k('presence', ch)
  if redis.call('HEXISTS', pres, user) == 1
      and dec(pres, user, tonumber(flat[i + 1])) <= 0 then
    redis.call('HDEL', k('members', ch), user)
    removed[#removed + 1] = ch; removed[#removed + 1] = user
  end
end
redis.call('DEL', mine)
local users = k('users')
mine = k('node', node, 'users')
flat = redis.call('HGETALL', mine)
for i = 1, #flat, 2 do
  if redis.call('HEXISTS', users, flat[i]) == 1
      and dec(users, flat[i], tonumber(flat[i + 1])) <= 0 then
    offline[#offline + 1] = flat[i]
  end
end
redis.call('DEL', mine)
redis.call('HDEL', k('conns'), node)
if mode ~= 'register' then return {vacated, removed, offline, changed} end
local state = cjson.decode(ARGV[3])
local occupied, added, online = {}, {}, {}
if state.conns > 0 then redis.call('HSET', k('conns'), node, state.conns) end
for _, e in ipairs(state.channels) do
  if redis.call('HINCRBY', channels, e[1], e[2]) == e[2] then occupied[#occupied + 1] = e[1] end
  redis.call('HINCRBY', k('node', node, 'channels'), e[1], e[2])
end
local was = {}
for i = 1, #removed, 2 do was[removed[i] .. '\0' .. removed[i + 1]] = true end
for _, e in ipairs(state.presence) do
  if redis.call('HINCRBY', k('presence', e[1]), e[2], e[3]) == e[3] then
    local key = e[1] .. '\0' .. e[2]
    if was[key] then was[key] = nil
    else added[#added + 1] = e[1]; added[#added + 1] = e[2] end
  end
  redis.call('HSETNX', k('members', e[1]), e[2], e[4])
  redis.call('HINCRBY', k('node', node, 'presence'), e[1] .. '\\0' .. e[2], e[3])
end
for _, e in ipairs(state.users) do
  if redis.call('HINCRBY', users, e[1], e[2]) == e[2] then online[#online + 1] = e[1] end
  redis.call('HINCRBY', k('node', node, 'users'), e[1], e[2])
end
local gone = {}
for i = 1, #removed, 2 do
  if was[removed[i] .. '\0' .. removed[i + 1]] then
    gone[#gone + 1] = removed[i]; gone[#gone + 1] = removed[i + 1]
  end
end
return {occupied, added, online, gone, held > 0 and 1 or 0}
"""
