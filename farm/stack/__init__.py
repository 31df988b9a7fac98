"""The local farm stack: Redis, the registry, a private dockerd and Flower (plus optional buildkitd),
started by the farm itself on 127.0.0.1 with all state under one directory.

    from farm.stack import Stack
    st = Stack()            # state in $FARM_STATE_DIR or ./.farm
    st.up(); print(st.env()); st.down()
"""

from farm.stack._stack import DEFAULT_SERVICES, SERVICES, Stack

__all__ = ["DEFAULT_SERVICES", "SERVICES", "Stack"]
