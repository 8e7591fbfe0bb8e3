"""Pod benchmark (issue 8): pod start latency, the cluster's memory, and time-to-app, on a real cluster.

``python -m bench.pods [--replicas 1,10,100] [--parts latency,memory,time-to-app]`` brings up a
one-node cluster with ``pinnace up`` on a temp data dir and free ports, measures, and takes it down
with ``pinnace down`` whatever happens. Modules: ``cluster`` (the commands, run without blocking the
watches), ``timeline`` (each pod's milestones from watch events), ``latency`` (apply a Deployment,
wait for Ready, delete), ``memory`` (PSS/RSS of every cluster process), ``time_to_app`` (``up`` on a
used data dir until the demo answers), ``report`` (the printed tables), ``main`` (the order).
It prints figures next to the issue's targets; nothing is asserted. Needs root, crun and conmon.
"""
