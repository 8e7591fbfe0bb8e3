"""The default seccomp profile: everything allowed except a deny-list of host-level system calls.

Docker's profile is an allow-list of ~350 calls; ours is the compact inverse, written as one table:
each denied call names the capability that makes it legitimate again (``None``: never, short of
``--privileged``). So ``--cap-add SYS_ADMIN`` re-allows mount/unshare/setns as it does in Docker,
while an ordinary container gets EPERM for them even when its capabilities would not stop it —
which matters most for ``unshare(CLONE_NEWUSER)`` and ``clone`` with namespace flags, which need no
capability at all and would hand the process a full capability set in a fresh user namespace.
``clone3`` answers ENOSYS (its flags live in memory seccomp cannot read) so libc falls back to
``clone``, whose flags argument we can check. Denied calls unknown to an architecture are skipped
by libseccomp when the runtime resolves names.
"""

from __future__ import annotations

import errno
import platform
from collections.abc import Iterable
from typing import Any

# system call -> capability that re-allows it (None: always denied in an unprivileged container)
DENIED: dict[str, str | None] = {
    # mounting and namespaces
    "mount": "CAP_SYS_ADMIN",
    "umount": "CAP_SYS_ADMIN",
    "umount2": "CAP_SYS_ADMIN",
    "fsopen": "CAP_SYS_ADMIN",
    "fsconfig": "CAP_SYS_ADMIN",
    "fsmount": "CAP_SYS_ADMIN",
    "fspick": "CAP_SYS_ADMIN",
    "move_mount": "CAP_SYS_ADMIN",
    "open_tree": "CAP_SYS_ADMIN",
    "mount_setattr": "CAP_SYS_ADMIN",
    "pivot_root": "CAP_SYS_ADMIN",
    "unshare": "CAP_SYS_ADMIN",
    "setns": "CAP_SYS_ADMIN",
    "swapon": "CAP_SYS_ADMIN",
    "swapoff": "CAP_SYS_ADMIN",
    "quotactl": "CAP_SYS_ADMIN",
    "quotactl_fd": "CAP_SYS_ADMIN",
    "lookup_dcookie": "CAP_SYS_ADMIN",
    "fanotify_init": "CAP_SYS_ADMIN",
    "name_to_handle_at": "CAP_SYS_ADMIN",
    "open_by_handle_at": "CAP_DAC_READ_SEARCH",
    "bpf": "CAP_BPF",
    "perf_event_open": "CAP_PERFMON",
    # other processes' memory
    "ptrace": "CAP_SYS_PTRACE",
    "process_vm_readv": "CAP_SYS_PTRACE",
    "process_vm_writev": "CAP_SYS_PTRACE",
    "kcmp": "CAP_SYS_PTRACE",
    # the kernel keyring is not namespaced
    "keyctl": None,
    "add_key": None,
    "request_key": None,
    # kernel, modules, clocks, hardware
    "reboot": "CAP_SYS_BOOT",
    "kexec_load": "CAP_SYS_BOOT",
    "kexec_file_load": "CAP_SYS_BOOT",
    "init_module": "CAP_SYS_MODULE",
    "finit_module": "CAP_SYS_MODULE",
    "delete_module": "CAP_SYS_MODULE",
    "create_module": "CAP_SYS_MODULE",
    "query_module": "CAP_SYS_MODULE",
    "get_kernel_syms": "CAP_SYS_MODULE",
    "acct": "CAP_SYS_PACCT",
    "settimeofday": "CAP_SYS_TIME",
    "clock_settime": "CAP_SYS_TIME",
    "clock_adjtime": "CAP_SYS_TIME",
    "stime": "CAP_SYS_TIME",
    "iopl": "CAP_SYS_RAWIO",
    "ioperm": "CAP_SYS_RAWIO",
    "syslog": "CAP_SYSLOG",
    "vhangup": "CAP_SYS_TTY_CONFIG",
    "mbind": "CAP_SYS_NICE",
    "set_mempolicy": "CAP_SYS_NICE",
    "move_pages": "CAP_SYS_NICE",
    "migrate_pages": "CAP_SYS_NICE",
    # obsolete or dangerous, never needed
    "userfaultfd": None,
    "uselib": None,
    "ustat": None,
    "sysfs": None,
    "_sysctl": None,
    "nfsservctl": None,
    "vm86": None,
    "vm86old": None,
}

# clone(2) flags that create namespaces: CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
CLONE_NAMESPACE_FLAGS: tuple[int, ...] = (
    0x00020000,
    0x02000000,
    0x04000000,
    0x08000000,
    0x10000000,
    0x20000000,
    0x40000000,
)

ARCHITECTURES: dict[str, list[str]] = {
    "x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
    "ppc64le": ["SCMP_ARCH_PPC64LE"],
    "riscv64": ["SCMP_ARCH_RISCV64"],
}


def default_profile(capabilities: Iterable[str], *, machine: str | None = None) -> dict[str, Any]:
    """The ``linux.seccomp`` document for a container holding ``capabilities``."""
    held = set(capabilities)
    denied = sorted(name for name, cap in DENIED.items() if cap is None or cap not in held)
    syscalls: list[dict[str, Any]] = []
    if denied:
        syscalls.append({"names": denied, "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EPERM})
    if "CAP_SYS_ADMIN" not in held:
        syscalls.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS})
        for flag in CLONE_NAMESPACE_FLAGS:
            syscalls.append(
                {
                    "names": ["clone"],
                    "action": "SCMP_ACT_ERRNO",
                    "errnoRet": errno.EPERM,
                    "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}],
                }
            )
    arch = ARCHITECTURES.get(machine or platform.machine(), [])
    profile: dict[str, Any] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": syscalls}
    if arch:
        profile["architectures"] = arch
    return profile
