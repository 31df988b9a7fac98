"""Every Redis key the farm writes, how long each lives, and every Lua script that changes several at once.

One home (as rq keeps its keys and scripts in one place), so a key is spelled once and every state
change is one atomic, idempotent script: a redelivered message or a retried call does nothing twice.
Celery's own keys (queues, results) are Celery's; the farm reads two of them (`UNACKED`, `UNACKED_INDEX`).

    farm:job:<id>            hash    a job's record: status, build, platform, image, digest, error, times,
                                     owner, attempts, worker, why an attempt was lost; who submitted it
                                     (namespace, branch, commit, labels, priority) and its task request
    farm:lease:<id>          string  the owner token of a running job, with a TTL its worker renews
    farm:flight:<image ref>  string  the job building that image ref now (single flight)
    farm:fanin:<index ref>   set     platforms of a multi-platform Build pushed so far
    farm:sent:<merge id>     string  set once the merge of a fan-in has been sent
    farm:log:<id>            stream  the builder's output, line by line, for followers
    farm:secrets:<id>        hash    build secret values waiting for their worker (never in task args)
    farm:workers             zset    live workers by last heartbeat
    farm:worker:<name>       hash    what a worker serves: queues, modes, platforms, host, pid, concurrency
    farm:lock:<name>         string  a lock with an owner token and a TTL

Admission (the farm decides what enters Celery's queues, and when):

    farm:wait:<queue>:<ns>   zset    the waiting room of a namespace on a queue: job ids by priority class
                                     then admission order (class * 1e12 + sequence)
    farm:rr:<queue>          zset    namespaces that queued work on a queue, by the turn they were last
                                     served (round robin: the least recently served goes first)
    farm:queues              set     queues that ever had admitted work (the dispatcher walks these)
    farm:namespaces          set     namespaces that ever had admitted work
    farm:inflight:<queue>    zset    jobs sent to Celery and not ended, by dispatch time
    farm:running:<ns>        zset    a namespace's jobs in flight on any queue (its share), by dispatch time
    farm:serving:<queue>     zset    live workers consuming a queue, by last heartbeat
    farm:concurrency         hash    worker -> how many builds it runs at once
    farm:policy              hash    the fair-share policy the workers announce: cap, cap:<ns>
    farm:seq                 string  a counter: admission order and round-robin turns
    farm:branch:<project>:<build>:<branch>
                             zset    unfinished jobs of a Build on a branch, by submission time (supersede)

History and metrics:

    farm:hist:all            zset    every job by submission time; also farm:hist:ns:<ns>,
                                     farm:hist:build:<build> and farm:hist:state:<state>
                                     (kept right by the scripts that change a job's state)
    farm:hist:indexes        set     the ns and build indexes, for trimming to the retention period
    farm:trimmed             string  set for a minute by the worker that trimmed the history (one a minute)
    farm:metrics:counters    hash    `name|label=value|…` -> count
    farm:metrics:histograms  hash    `name|label=value|…|le=<bucket>` -> count, `…|sum` -> seconds

Job states: queued -> started -> built | failed | cancelled, and started -> retrying -> started (a
transient failure); queued and retrying -> cancelled; cached (a Build the registry status check
answered: a record for the history, never run). A queued job is in a waiting room or, once
dispatched, in flight (`dispatched_at`); a dispatched job whose message never reached Celery goes
back to its waiting room (UNDISPATCH).
"""

from __future__ import annotations

JOB_TTL = 7 * 24 * 3600          # job records, logs, fan-in sets and history outlive the job by a week
LOG_MAXLEN = 20_000              # lines kept per job log (approximate trim)
WORKER_TTL = 30                  # a worker not heard from for this long is gone
BUILT_GRACE = 120                # a just-built ref stays claimed this long (single flight's late arrivals)

PREFIX = "farm:"
# kombu's Redis transport: delivered, unacknowledged messages by delivery time. A running job's
# worker keeps its message's score fresh, so kombu re-delivers only messages of lost workers.
UNACKED = "unacked"
UNACKED_INDEX = "unacked_index"
WORKERS = f"{PREFIX}workers"
ENDED = ("built", "failed", "cancelled")
STATES = ("queued", "started", "retrying", "built", "failed", "cancelled", "cached")

# Admission.
QUEUES = f"{PREFIX}queues"
NAMESPACES = f"{PREFIX}namespaces"
CONCURRENCY = f"{PREFIX}concurrency"
POLICY = f"{PREFIX}policy"
SEQ = f"{PREFIX}seq"
PRIORITIES = {"high": 0, "normal": 1, "low": 2}   # the class of a waiting job: lower goes first
CLASS_SPAN = 10**12                               # score = class * CLASS_SPAN + admission sequence

# History and metrics.
HISTORY = f"{PREFIX}hist:all"
HISTORY_INDEXES = f"{PREFIX}hist:indexes"
TRIMMED = f"{PREFIX}trimmed"
COUNTERS = f"{PREFIX}metrics:counters"
HISTOGRAMS = f"{PREFIX}metrics:histograms"
# Seconds: queue waits of a fraction of a second up to builds of an hour and more.
BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)


def job(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}"


def lease(job_id: str) -> str:
    return f"{PREFIX}lease:{job_id}"


def flight(ref: str) -> str:
    return f"{PREFIX}flight:{ref}"


def fanin(index_ref: str) -> str:
    return f"{PREFIX}fanin:{index_ref}"


def sent(merge_id: str) -> str:
    return f"{PREFIX}sent:{merge_id}"


def log(job_id: str) -> str:
    return f"{PREFIX}log:{job_id}"


def job_of_log(key: str) -> str:
    """The job id of a `log()` key."""
    return key.removeprefix(f"{PREFIX}log:")


# The public half of the farm's sealing key (farm.sealing), announced by every worker.
SEALING_KEY = f"{PREFIX}sealing-key"


def secrets(job_id: str) -> str:
    return f"{PREFIX}secrets:{job_id}"


def worker(name: str) -> str:
    return f"{PREFIX}worker:{name}"


def lock(name: str) -> str:
    return f"{PREFIX}lock:{name}"


def waiting(queue: str, namespace: str) -> str:
    return f"{PREFIX}wait:{queue}:{namespace}"


def turns(queue: str) -> str:
    return f"{PREFIX}rr:{queue}"


def in_flight(queue: str) -> str:
    return f"{PREFIX}inflight:{queue}"


def running(namespace: str) -> str:
    return f"{PREFIX}running:{namespace}"


def serving(queue: str) -> str:
    return f"{PREFIX}serving:{queue}"


def branch(project: str, build: str, branch_name: str) -> str:
    return f"{PREFIX}branch:{project}:{build}:{branch_name}"


def history_namespace(namespace: str) -> str:
    return f"{PREFIX}hist:ns:{namespace}"


def history_build(build: str) -> str:
    return f"{PREFIX}hist:build:{build}"


def history_state(state: str) -> str:
    return f"{PREFIX}hist:state:{state}"


# What several scripts share: state indexes, metrics, and ending a job (every script that ends one
# releases the same things). A job key is 'farm:job:' (9 characters) and its id.
_LIB = """
local P = 'farm:'
local function ended(st) return st == 'built' or st == 'failed' or st == 'cancelled' or st == 'cached' end
local function idof(job) return string.sub(job, 10) end
local function blank(v) return v == nil or v == false or v == '' end

-- the job's place in the per-state history index follows its status
local function state_index(job, old, new)
  local id, t = idof(job), redis.call('HGET', job, 'queued_at')
  if not blank(old) and old ~= new then redis.call('ZREM', P .. 'hist:state:' .. old, id) end
  if not blank(t) then redis.call('ZADD', P .. 'hist:state:' .. new, t, id) end
end

-- a new record in the history indexes (by submission time)
local function index_new(job)
  local id = idof(job)
  local f = redis.call('HMGET', job, 'queued_at', 'namespace', 'build', 'status')
  if blank(f[1]) then return end
  redis.call('ZADD', P .. 'hist:all', f[1], id)
  if not blank(f[2]) then
    redis.call('ZADD', P .. 'hist:ns:' .. f[2], f[1], id)
    redis.call('SADD', P .. 'hist:indexes', P .. 'hist:ns:' .. f[2])
  end
  if not blank(f[3]) then
    redis.call('ZADD', P .. 'hist:build:' .. f[3], f[1], id)
    redis.call('SADD', P .. 'hist:indexes', P .. 'hist:build:' .. f[3])
  end
  if not blank(f[4]) then redis.call('ZADD', P .. 'hist:state:' .. f[4], f[1], id) end
end

local function count(name, labels)
  redis.call('HINCRBY', P .. 'metrics:counters', name .. labels, 1)
end

local BUCKETS = {%(buckets)s}
local function observe(name, labels, v)
  if v < 0 then v = 0 end
  local h = P .. 'metrics:histograms'
  for _, b in ipairs(BUCKETS) do
    if v <= b then redis.call('HINCRBY', h, name .. labels .. '|le=' .. b, 1) end
  end
  redis.call('HINCRBY', h, name .. labels .. '|le=+Inf', 1)
  redis.call('HINCRBYFLOAT', h, name .. labels .. '|sum', v)
end

local function build_labels(job)
  local f = redis.call('HMGET', job, 'mode', 'platform')
  return '|mode=' .. (f[1] or '') .. '|platform=' .. (f[2] or '')
end

-- out of its waiting room, its queue's in-flight set, its namespace's share and its branch index
local function release(job)
  local id = idof(job)
  local f = redis.call('HMGET', job, 'wait_key', 'queue', 'namespace', 'branch_key')
  if not blank(f[1]) then
    redis.call('ZREM', f[1], id)
    redis.call('ZREM', P .. 'inflight:' .. (f[2] or ''), id)
    redis.call('ZREM', P .. 'running:' .. (f[3] or ''), id)
  end
  if not blank(f[4]) then redis.call('ZREM', f[4], id) end
end

-- after its status was set to an end state: indexes, shares, the single-flight claim, metrics
local function end_job(job, old, flight, ttl)
  local id = idof(job)
  local new = redis.call('HGET', job, 'status')
  state_index(job, old, new)
  release(job)
  -- a built ref stays claimed for a while, so late submitters share it instead of building again
  if redis.call('GET', flight) == id then
    if new == 'built' then redis.call('EXPIRE', flight, %(grace)s) else redis.call('DEL', flight) end
  end
  local f = redis.call('HMGET', job, 'cause', 'error_type', 'attempt_started_at', 'finished_at', 'queue')
  local cause = f[1]
  if blank(cause) then cause = f[2] or '' end
  if new == 'built' then cause = '' end
  if f[5] == 'build.merge' then
    count('merges', '|result=' .. new)
  else
    count('builds', '|result=' .. new .. '|cause=' .. cause)
    if not blank(f[3]) and not blank(f[4]) then
      observe('run_seconds', build_labels(job), tonumber(f[4]) - tonumber(f[3]))
    end
  end
  redis.call('EXPIRE', job, ttl)
end
""" % {"buckets": ", ".join(str(b) for b in BUCKETS), "grace": BUILT_GRACE}


# Single flight, and admission. KEYS: flight, new job; ARGV: new job id, job TTL, queue to admit the
# job to ('' for none: a merge), namespace, priority class, branch index key ('' for none), 1 to
# follow a job that built this ref within BUILT_GRACE (0: --force), then field/value pairs of the new
# record (`queued_at` among them). The job already building this ref (not ended) or that just built
# it (a submitter whose status check ran before that build finished), else the new job, recorded as
# queued, indexed, and put in the waiting room of its queue and namespace. Returns {job id, 1 if new}.
CLAIM = _LIB + """
local cur = redis.call('GET', KEYS[1])
if cur then
  local st = redis.call('HGET', P .. 'job:' .. cur, 'status')
  if (st and not ended(st)) or (st == 'built' and ARGV[7] == '1') then
    count('single_flight_hits', '')
    return {cur, 0}
  end
end
local id, ttl = ARGV[1], ARGV[2]
redis.call('SET', KEYS[1], id, 'EX', ttl)
redis.call('HSET', KEYS[2], unpack(ARGV, 8))
index_new(KEYS[2])
local queue, ns = ARGV[3], ARGV[4]
if queue ~= '' then
  local seq = redis.call('INCR', P .. 'seq')
  local score = string.format('%.0f', tonumber(ARGV[5]) * """ + str(CLASS_SPAN) + """ + seq)
  local wait = P .. 'wait:' .. queue .. ':' .. ns
  redis.call('ZADD', wait, score, id)
  redis.call('ZADD', P .. 'rr:' .. queue, 'NX', 0, ns)
  redis.call('SADD', P .. 'queues', queue)
  redis.call('SADD', P .. 'namespaces', ns)
  redis.call('HSET', KEYS[2], 'wait_key', wait, 'wait_score', score)
end
if ARGV[6] ~= '' then
  redis.call('ZADD', ARGV[6], redis.call('HGET', KEYS[2], 'queued_at') or 0, id)
  redis.call('EXPIRE', ARGV[6], ttl)
  redis.call('HSET', KEYS[2], 'branch_key', ARGV[6])
end
redis.call('EXPIRE', KEYS[2], ttl)
return {id, 1}
"""

# Moves jobs from the waiting rooms into flight while there is room. ARGV: now, worker TTL, then the
# queues to look at (none: every queue with admitted work). For each queue, while its in-flight count
# is below its capacity (the concurrency of the live workers serving it): of the namespaces with
# work waiting and in-flight jobs below their cap (`farm:policy`: cap:<ns>, else cap; 0 = none), the
# one whose head has the best priority class, the least recently served first among equals, gives
# its head job. Returns {job id, queue, task request, priority, …} for the caller to send. Idempotent
# and safe under concurrency: a job leaves its waiting room once.
DISPATCH = _LIB + """
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local queues = {}
for i = 3, #ARGV do queues[#queues + 1] = ARGV[i] end
if #queues == 0 then queues = redis.call('SMEMBERS', P .. 'queues') end
local default_cap = tonumber(redis.call('HGET', P .. 'policy', 'cap') or '0') or 0
local out = {}
-- the best job waiting for a namespace (dropping heads that ended or expired meanwhile)
local function head(wait)
  while true do
    local h = redis.call('ZRANGE', wait, 0, 0, 'WITHSCORES')
    if #h == 0 then return nil end
    if redis.call('HGET', P .. 'job:' .. h[1], 'status') == 'queued' then return h end
    redis.call('ZREM', wait, h[1])
  end
end
for _, q in ipairs(queues) do
  local serving = P .. 'serving:' .. q
  redis.call('ZREMRANGEBYSCORE', serving, '-inf', now - ttl)
  local capacity = 0
  for _, w in ipairs(redis.call('ZRANGE', serving, 0, -1)) do
    capacity = capacity + (tonumber(redis.call('HGET', P .. 'concurrency', w) or '1') or 1)
  end
  local inflight, rr = P .. 'inflight:' .. q, P .. 'rr:' .. q
  local free = capacity - redis.call('ZCARD', inflight)
  while free > 0 do
    local best, best_class, best_id = nil, nil, nil
    for _, ns in ipairs(redis.call('ZRANGE', rr, 0, -1)) do
      local h = head(P .. 'wait:' .. q .. ':' .. ns)
      if h then
        local cap = tonumber(redis.call('HGET', P .. 'policy', 'cap:' .. ns) or '') or default_cap
        if cap <= 0 or redis.call('ZCARD', P .. 'running:' .. ns) < cap then
          local class = math.floor(tonumber(h[2]) / """ + str(CLASS_SPAN) + """)
          if best == nil or class < best_class then best, best_class, best_id = ns, class, h[1] end
        end
      end
    end
    if best == nil then break end
    local job = P .. 'job:' .. best_id
    redis.call('ZREM', P .. 'wait:' .. q .. ':' .. best, best_id)
    redis.call('ZADD', inflight, now, best_id)
    redis.call('ZADD', P .. 'running:' .. best, now, best_id)
    redis.call('ZADD', rr, redis.call('INCR', P .. 'seq'), best)
    redis.call('HSET', job, 'dispatched_at', ARGV[1], 'sent_at', '')
    local f = redis.call('HMGET', job, 'request', 'priority')
    out[#out + 1] = best_id
    out[#out + 1] = q
    out[#out + 1] = f[1] or ''
    out[#out + 1] = f[2] or 'normal'
    free = free - 1
  end
end
return out
"""

# A dispatched job whose message never reached Celery goes back to its waiting room, at its old
# place. KEYS: job; ARGV: the dispatch time the caller saw (a later dispatch or a start wins).
UNDISPATCH = _LIB + """
local f = redis.call('HMGET', KEYS[1], 'status', 'dispatched_at', 'wait_key', 'wait_score', 'queue', 'namespace')
if f[1] ~= 'queued' or f[2] ~= ARGV[1] or blank(f[3]) then return 0 end
local id = idof(KEYS[1])
redis.call('ZREM', P .. 'inflight:' .. f[5], id)
redis.call('ZREM', P .. 'running:' .. f[6], id)
redis.call('ZADD', f[3], f[4], id)
redis.call('HSET', KEYS[1], 'dispatched_at', '', 'sent_at', '')
count('redispatches', '')
return 1
"""

# A worker takes a delivered job. KEYS: job, lease; ARGV: owner token, lease ms, now, worker, delivery
# tag, job TTL. Returns {verdict, attempt, status}: 'run' (this worker owns it now), 'ended'
# (built/failed/cancelled: a redelivered message, nothing to do; a job whose cancel was asked while
# nobody ran it ends here), 'busy' (another live worker runs it).
START = _LIB + """
local st = redis.call('HGET', KEYS[1], 'status')
if ended(st) then return {'ended', 0, st} end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return {'busy', 0, st or ''} end
if not blank(redis.call('HGET', KEYS[1], 'cancel_requested_at')) then
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finished_at', ARGV[3])
  end_job(KEYS[1], st, P .. 'flight:' .. (redis.call('HGET', KEYS[1], 'ref') or ''), ARGV[6])
  return {'ended', 0, 'cancelled'}
end
local owner = redis.call('HGET', KEYS[1], 'owner')
if st == 'started' and owner and owner ~= ARGV[1] then
  local was = redis.call('HGET', KEYS[1], 'worker') or '?'
  local n = redis.call('HGET', KEYS[1], 'attempts') or '?'
  redis.call('HSET', KEYS[1], 'lost', 'attempt ' .. n .. ' on ' .. was .. ': the worker was lost (its lease lapsed)')
  count('lease_expiries', '')
end
local attempt = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[1], 'status', 'started', 'owner', ARGV[1], 'worker', ARGV[4], 'tag', ARGV[5],
           'attempt_started_at', ARGV[3], 'heartbeat_at', ARGV[3])
redis.call('HSETNX', KEYS[1], 'started_at', ARGV[3])
state_index(KEYS[1], st, 'started')
-- an admitted job is in flight while it runs (also one sent again after it was taken for unsent)
local f = redis.call('HMGET', KEYS[1], 'wait_key', 'queue', 'namespace', 'queued_at')
if not blank(f[1]) then
  local id = idof(KEYS[1])
  redis.call('ZREM', f[1], id)
  redis.call('ZADD', P .. 'inflight:' .. f[2], 'NX', ARGV[3], id)
  redis.call('ZADD', P .. 'running:' .. f[3], 'NX', ARGV[3], id)
  if attempt == 1 and not blank(f[4]) then
    observe('queue_wait_seconds', build_labels(KEYS[1]), tonumber(ARGV[3]) - tonumber(f[4]))
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[6])
return {'run', attempt, st or ''}
"""

# The owner renews its lease and its message's place in kombu's unacked index. KEYS: job, lease,
# unacked index; ARGV: owner token, lease ms, now, delivery tag. 0 when the job has another owner
# now (this worker was taken for lost): the caller must stop its builder; 2 when a cancel was asked:
# the caller stops its builder and ends the attempt cancelled; else 1.
RENEW = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
local st = redis.call('HGET', KEYS[1], 'status')
if st ~= 'started' then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[1], 'heartbeat_at', ARGV[3])
if ARGV[4] ~= '' then redis.call('ZADD', KEYS[3], 'XX', ARGV[3], ARGV[4]) end
local cancel = redis.call('HGET', KEYS[1], 'cancel_requested_at')
if cancel and cancel ~= '' then return 2 end
return 1
"""

# The owner ends an attempt. KEYS: job, lease, flight of its ref; ARGV: owner token, job TTL, then
# field/value pairs (status first). A stale owner (the job was handed to another worker, or ended
# meanwhile: cancelled) changes nothing and gets 0. An ended job releases its single-flight claim,
# its in-flight place and its namespace's share.
FINISH = _LIB + """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
local old = redis.call('HGET', KEYS[1], 'status')
if old ~= 'started' then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('DEL', KEYS[2])
local st = redis.call('HGET', KEYS[1], 'status')
if ended(st) then
  end_job(KEYS[1], old, KEYS[3], ARGV[2])
else
  state_index(KEYS[1], old, st)
  if st == 'retrying' then count('retries', build_labels(KEYS[1])) end
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 1
"""

# Ends a job nobody owns (a merge that will never be sent, a queued job given up) unless it ended
# already. KEYS: job, flight of its ref; ARGV: job TTL, then field/value pairs (status first).
END_UNOWNED = _LIB + """
local st = redis.call('HGET', KEYS[1], 'status')
if ended(st) then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
end_job(KEYS[1], st, KEYS[2], ARGV[1])
return 1
"""

# Cancel a job. KEYS: job; ARGV: now, why (a sentence for the record and its followers), cause
# (`cancelled`, `superseded`), job TTL. A job nobody runs (waiting, dispatched but not taken, between
# retries, or started by a worker whose lease lapsed) ends `cancelled` at once; a running one gets a
# cancel flag its worker's next renewal reports. Returns {verdict, status before}: 'cancelled',
# 'requested', 'ended' (nothing to do) or 'unknown'.
CANCEL = _LIB + """
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return {'unknown', ''} end
if ended(st) then return {'ended', st} end
local id = idof(KEYS[1])
redis.call('HSET', KEYS[1], 'cause', ARGV[3], 'error', ARGV[2])
if st == 'started' and redis.call('EXISTS', P .. 'lease:' .. id) == 1 then
  if blank(redis.call('HGET', KEYS[1], 'cancel_requested_at')) then
    redis.call('HSET', KEYS[1], 'cancel_requested_at', ARGV[1])
  end
  return {'requested', st}
end
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finished_at', ARGV[1])
end_job(KEYS[1], st, P .. 'flight:' .. (redis.call('HGET', KEYS[1], 'ref') or ''), ARGV[4])
return {'cancelled', st}
"""

# A Build the registry status check answered (nothing to build): a `cached` record for the history.
# KEYS: job; ARGV: job TTL, then field/value pairs.
CACHED = _LIB + """
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
index_new(KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
count('status_check_hits', '|namespace=' .. (redis.call('HGET', KEYS[1], 'namespace') or ''))
return 1
"""

# Drops in-flight and namespace-share entries of jobs that ended or whose record expired (a record
# lost to a Redis crash, say), so capacity is never held by a job that is gone. Returns how many.
REAP = _LIB + """
local n = 0
local function reap(set)
  for _, id in ipairs(redis.call('ZRANGE', set, 0, -1)) do
    local st = redis.call('HGET', P .. 'job:' .. id, 'status')
    if not st or ended(st) then
      redis.call('ZREM', set, id)
      n = n + 1
    end
  end
end
for _, q in ipairs(redis.call('SMEMBERS', P .. 'queues')) do reap(P .. 'inflight:' .. q) end
for _, ns in ipairs(redis.call('SMEMBERS', P .. 'namespaces')) do reap(P .. 'running:' .. ns) end
return n
"""

# Fan-in of a multi-platform Build. KEYS: fan-in set, flight of the index ref; ARGV: job TTL, then the
# platforms just pushed (none: only check). The merge building the index now, once every platform
# it lists is in the set, and only for the first caller to see it complete (else '').
FANIN = """
for i = 2, #ARGV do redis.call('SADD', KEYS[1], ARGV[i]) end
redis.call('EXPIRE', KEYS[1], ARGV[1])
local merge = redis.call('GET', KEYS[2])
if not merge then return '' end
local job = 'farm:job:' .. merge
if redis.call('HGET', job, 'status') ~= 'queued' then return '' end
local wanted = redis.call('HGET', job, 'platforms') or ''
for p in string.gmatch(wanted, '[^,]+') do
  if redis.call('SISMEMBER', KEYS[1], p) == 0 then return '' end
end
if redis.call('SET', 'farm:sent:' .. merge, '1', 'NX', 'EX', ARGV[1]) then return merge end
return ''
"""
