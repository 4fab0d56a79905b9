// A user-space process driving VFIO through its uAPI one call at a time — what QEMU
// does when it realizes a vfio device, without the rest of QEMU. Tests and checker
// scenarios use it for open/close/VM-destroy races; library users can script a VFIO
// client with it.
import type { KGen, Kernel, Task } from '../kernel/index.js';
import { kvm_vfio_file_add, kvm_vfio_file_del, type Kvm } from '../kvm/index.js';
import { eventfd_file, type EventFdCtx } from './eventfd.js';
import { Files, sys_close, sys_ioctl, task_set_files, type KFile } from './file.js';
import { vfio_file_set_kvm, vfio_open } from './group.js';
import { VFIO_GROUP_GET_DEVICE_FD, VFIO_GROUP_SET_CONTAINER, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU } from './uapi.js';
import type { Vfio } from './vfio_main.js';

/** What the process needs of the host: its kernel, VFIO core and sysfs (for the group link). */
export interface VfioProcessEnv {
  readonly k: Kernel;
  readonly vfio: Vfio;
  readonly sysfs: { readlink(path: string): string };
}

export class VfioProcess {
  readonly files: Files;
  group_fd = -1;
  container_fd = -1;
  device_fd = -1;
  group_file: KFile | null = null;
  constructor(
    readonly env: VfioProcessEnv,
    /** The process name (its file table's). */
    comm = 'vfio-user',
  ) {
    this.files = new Files(comm);
  }

  /** Makes the calling task a thread of this process (every call below does). */
  enter(): void {
    task_set_files(this.env.k.current!, this.files);
  }

  /** Runs body in a new thread of this process (named comm) to completion and returns its value. */
  run<T>(body: KGen<T>, comm = 'user'): T {
    const k = this.env.k;
    const t = this.spawn(body, comm);
    k.onExit(t, () => {});
    k.runUntilExit(t);
    if (t.error) throw t.error;
    if (!t.done) throw new Error(`${comm} did not finish: ${k.status}`);
    return t.exitValue as T;
  }

  /** Spawns body in a new thread of this process without running the scheduler. */
  spawn<T>(body: KGen<T>, comm = 'user'): Task {
    const t = this.env.k.spawn(comm, body);
    task_set_files(t, this.files);
    return t;
  }

  /** open the group and a container, SET_CONTAINER, SET_IOMMU; KVM_DEV_VFIO_FILE_ADD if kvm. */
  *setup(uuid: string, kvm: Kvm | null): KGen<number> {
    this.enter();
    const { k, vfio, sysfs } = this.env;
    const g = sysfs.readlink(`/sys/bus/mdev/devices/${uuid}/iommu_group`).split('/').pop()!;
    this.group_fd = yield* vfio_open(vfio, this.files, `/dev/vfio/${g}`);
    if (this.group_fd < 0) return this.group_fd;
    this.group_file = this.files.get(this.group_fd);
    this.container_fd = yield* vfio_open(vfio, this.files, '/dev/vfio/vfio');
    let r: number = yield* sys_ioctl(k, this.files, this.group_fd, VFIO_GROUP_SET_CONTAINER, this.container_fd);
    if (r) return r;
    r = yield* sys_ioctl(k, this.files, this.container_fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
    if (r) return r;
    if (kvm) {
      const gf = this.group_file!;
      r = yield* kvm_vfio_file_add(kvm, gf, (to) => vfio_file_set_kvm(gf, to));
    }
    return r;
  }

  /** VFIO_GROUP_GET_DEVICE_FD: the device fd or -errno. */
  *open(uuid: string): KGen<number> {
    this.enter();
    this.device_fd = yield* sys_ioctl(this.env.k, this.files, this.group_fd, VFIO_GROUP_GET_DEVICE_FD, uuid);
    return this.device_fd;
  }

  /** An ioctl on the device fd. */
  *ioctl(cmd: number, arg: unknown): KGen<number> {
    this.enter();
    return yield* sys_ioctl(this.env.k, this.files, this.device_fd, cmd, arg);
  }

  /** close(2) of the device fd, as given (-EBADF if it is not open). */
  *close(): KGen<number> {
    this.enter();
    const r: number = yield* sys_close(this.env.k, this.files, this.device_fd);
    this.device_fd = -1;
    return r;
  }

  /** Everything closed: the device, the KVM association, the group, the container. */
  *closeAll(kvm: Kvm | null): KGen<void> {
    this.enter();
    if (this.device_fd >= 0) yield* this.close();
    if (kvm && this.group_file && kvm.vm_fd_open) yield* kvm_vfio_file_del(kvm, this.group_file);
    if (this.group_fd >= 0) yield* sys_close(this.env.k, this.files, this.group_fd);
    if (this.container_fd >= 0) yield* sys_close(this.env.k, this.files, this.container_fd);
    this.group_fd = this.container_fd = -1;
  }

  /** eventfd(2) in this process. */
  eventfd(name = 'eventfd'): { fd: number; ctx: EventFdCtx } {
    const f = eventfd_file(name);
    return { fd: this.files.install(f), ctx: f.private_data };
  }
}
