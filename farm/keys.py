"""Every Redis key the farm writes, how long each lives, and every Lua script that changes several at once.

One home (as rq keeps its keys and scripts in one place), so a key is spelled once and every state
change is one atomic, idempotent script: a redelivered message or a retried call does nothing twice.
Celery's own keys (queues, results) are Celery's; the farm reads one of them (`UNACKED_INDEX`).

    farm:job:<id>            hash    a job's record: status, build, platform, image, digest, error, times,
                                     owner, attempts, worker, why an attempt was lost
    farm:lease:<id>          string  the owner token of a running job, with a TTL its worker renews
    farm:flight:<image ref>  string  the job building that image ref now (single flight)
    farm:fanin:<index ref>   set     platforms of a multi-platform Build pushed so far
    farm:sent:<merge id>     string  set once the merge of a fan-in has been sent
    farm:log:<id>            stream  the builder's output, line by line, for followers
    farm:secrets:<id>        hash    build secret values waiting for their worker (never in task args)
    farm:workers             zset    live workers by last heartbeat
    farm:worker:<name>       hash    what a worker serves: queues, modes, platforms, host, pid
    farm:lock:<name>         string  a lock with an owner token and a TTL

Job states: queued -> started -> built | failed, and started -> retrying -> started (a transient
failure), started -> queued (its worker was lost: the lease lapsed before the job ended).
"""

from __future__ import annotations

JOB_TTL = 7 * 24 * 3600          # job records, logs and fan-in sets outlive the job by a week
LOG_MAXLEN = 20_000              # lines kept per job log (approximate trim)
WORKER_TTL = 30                  # a worker not heard from for this long is gone
BUILT_GRACE = 120                # a just-built ref is shared for this long (single flight's late arrivals)

PREFIX = "farm:"
# kombu's Redis transport: delivered, unacknowledged messages by delivery time. A running job's
# worker keeps its message's score fresh, so kombu re-delivers only messages of lost workers.
UNACKED = "unacked"
UNACKED_INDEX = "unacked_index"
WORKERS = f"{PREFIX}workers"
ENDED = ("built", "failed", "cancelled")


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


def secrets(job_id: str) -> str:
    return f"{PREFIX}secrets:{job_id}"


def worker(name: str) -> str:
    return f"{PREFIX}worker:{name}"


def lock(name: str) -> str:
    return f"{PREFIX}lock:{name}"


# Single flight. KEYS: flight, new job; ARGV: new job id, job TTL, 1 to follow a just-built job (else
# 0: --force), then field/value pairs of the new record. The job building this ref (not ended, or not
# yet started), or the one that built it within BUILT_GRACE (a submitter whose status check ran before
# that build finished), else the new job, recorded as queued. Returns {job id, 1 if it is the new one}.
CLAIM = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local st = redis.call('HGET', 'farm:job:' .. cur, 'status')
  if st and st ~= 'built' and st ~= 'failed' and st ~= 'cancelled' then return {cur, 0} end
  if st == 'built' and ARGV[3] == '1' then return {cur, 0} end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('HSET', KEYS[2], unpack(ARGV, 4))
redis.call('EXPIRE', KEYS[2], ARGV[2])
return {ARGV[1], 1}
"""

# A worker takes a delivered job. KEYS: job, lease; ARGV: owner token, lease ms, now, worker, delivery tag.
# Returns {verdict, attempt, status}: 'run' (this worker owns it now), 'ended' (built/failed/cancelled:
# a redelivered message, nothing to do), 'busy' (another live worker runs it).
START = """
local st = redis.call('HGET', KEYS[1], 'status')
if st == 'built' or st == 'failed' or st == 'cancelled' then return {'ended', 0, st} end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return {'busy', 0, st or ''} end
local owner = redis.call('HGET', KEYS[1], 'owner')
if st == 'started' and owner and owner ~= ARGV[1] then
  local was = redis.call('HGET', KEYS[1], 'worker') or '?'
  local n = redis.call('HGET', KEYS[1], 'attempts') or '?'
  redis.call('HSET', KEYS[1], 'lost', 'attempt ' .. n .. ' on ' .. was .. ': the worker was lost (its lease lapsed)')
end
local attempt = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[1], 'status', 'started', 'owner', ARGV[1], 'worker', ARGV[4], 'tag', ARGV[5],
           'attempt_started_at', ARGV[3], 'heartbeat_at', ARGV[3])
redis.call('HSETNX', KEYS[1], 'started_at', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[6])
return {'run', attempt, st or ''}
"""

# The owner renews its lease and its message's place in kombu's unacked index. KEYS: job, lease,
# unacked index; ARGV: owner token, lease ms, now, delivery tag. 0 when the job has another owner
# now (this worker was taken for lost): the caller must stop its builder.
RENEW = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
local st = redis.call('HGET', KEYS[1], 'status')
if st ~= 'started' then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[1], 'heartbeat_at', ARGV[3])
if ARGV[4] ~= '' then redis.call('ZADD', KEYS[3], 'XX', ARGV[3], ARGV[4]) end
return 1
"""

# The owner ends an attempt. KEYS: job, lease, flight of its ref; ARGV: owner token, job TTL, then
# field/value pairs (status first). A stale owner (the job was handed to another worker) changes
# nothing and gets 0. A failed or cancelled job releases its single-flight claim; a built one keeps
# it for BUILT_GRACE seconds, so late followers share the result instead of building again.
FINISH = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('DEL', KEYS[2])
redis.call('EXPIRE', KEYS[1], ARGV[2])
local st = redis.call('HGET', KEYS[1], 'status')
if redis.call('GET', KEYS[3]) == KEYS[1]:sub(10) then
  if st == 'built' then redis.call('EXPIRE', KEYS[3], %d)
  elseif st == 'failed' or st == 'cancelled' then redis.call('DEL', KEYS[3]) end
end
return 1
""" % BUILT_GRACE

# Ends a job nobody owns (a merge that will never be sent, a queued job given up) unless it ended
# already. KEYS: job, flight of its ref; ARGV: job TTL, then field/value pairs (status first).
END_UNOWNED = """
local st = redis.call('HGET', KEYS[1], 'status')
if st == 'built' or st == 'failed' or st == 'cancelled' then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
if redis.call('GET', KEYS[2]) == KEYS[1]:sub(10) then redis.call('DEL', KEYS[2]) end
return 1
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
