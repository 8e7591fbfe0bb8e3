"""``pinnace cluster``: throwaway multi-node clusters on one host, as kind/k3d make them.

The control plane runs on the host; each node is a network namespace with an address on a host
bridge, its own state dir and its own ``pinnace agent``. ``layout`` decides names and addresses and
records them in ``cluster.json``; ``netns`` makes (and unmakes) the host bridge and node namespaces;
``control_plane`` and ``nodes`` start and stop the daemons; ``hostgw`` keeps the pod routes between
nodes; ``images`` gives every node an image; ``commands`` is the CLI.
"""
