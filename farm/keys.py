"""Every Redis key the farm writes, how long each lives, and every Lua script that changes several at once.

One home (as rq keeps its keys and scripts in one place), so a key is spelled once and an atomic
step is one script. Celery's own keys (queues, `unacked`, results) are Celery's; these are the farm's:

    farm:job:<id>            hash    a job's record: status, build, platform, image, digest, error, times
    farm:log:<id>            stream  the builder's output, line by line, for followers
    farm:secrets:<id>        hash    build secret values waiting for their worker (never in task args)
    farm:merge:<merge id>    set     platform jobs of a multi-platform Build that have pushed (fan-in)
    farm:lock:<name>         string  a lock with an owner token and a TTL
"""

from __future__ import annotations

JOB_TTL = 7 * 24 * 3600          # job records, logs and fan-in sets outlive the job by a week
LOG_MAXLEN = 20_000              # lines kept per job log (approximate trim)

PREFIX = "farm:"


def job(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}"


def log(job_id: str) -> str:
    return f"{PREFIX}log:{job_id}"


def job_of_log(key: str) -> str:
    """The job id of a `log()` key."""
    return key.removeprefix(f"{PREFIX}log:")


def secrets(job_id: str) -> str:
    return f"{PREFIX}secrets:{job_id}"


def merge(merge_id: str) -> str:
    return f"{PREFIX}merge:{merge_id}"


def lock(name: str) -> str:
    return f"{PREFIX}lock:{name}"


# Fan-in: record a platform job as pushed; 1 exactly once, for the call that completes the set.
# KEYS[1] merge set; ARGV: job id, number of platform jobs, TTL. A redelivered task adds nothing,
# so the merge is sent once.
PLATFORM_DONE = """
local added = redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
if added == 1 and redis.call('SCARD', KEYS[1]) == tonumber(ARGV[2]) then return 1 end
return 0
"""
