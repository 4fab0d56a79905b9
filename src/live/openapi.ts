// The OpenAPI 3.1 description of the live host's HTTP API, served at /openapi.json.
const err = { $ref: '#/components/schemas/Error' };
const errResp = (d: string) => ({ description: d, content: { 'application/json': { schema: err } } });
const pathParam = {
  name: 'path',
  in: 'query',
  required: true,
  description: 'Absolute, normalised sysfs path below /sys (no ".", "..", "//", trailing "/")',
  schema: { type: 'string', example: '/sys/bus/ap/apmask' },
};

const nameParam = { name: 'name', in: 'query', required: true, description: "the guest's name", schema: { type: 'string', example: 'vm1' } };
function guestBody(mdev: boolean) {
  return {
    type: 'object',
    additionalProperties: false,
    required: mdev ? ['name', 'mdev'] : ['name'],
    properties: {
      name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' },
      ...(mdev ? { mdev: { type: 'string', description: 'mdev UUID', example: '11111111-2222-3333-4444-555555555555' } } : {}),
    },
  };
}

export const openapi = {
  openapi: '3.1.0',
  info: {
    title: 'apsim live host API',
    version: '1',
    description:
      'Control and observe a simulated s390 LPAR (AP bus, zcrypt, vfio_ap, guests). Loopback only by default; ' +
      'when the daemon listens on another interface every request needs "Authorization: Bearer <token>" (token in ROOT/run.json). ' +
      'Errors are JSON objects {error, errno?, code?, message?, path?}. State-changing requests are journaled before the reply.',
  },
  servers: [{ url: 'http://127.0.0.1:{port}', variables: { port: { default: '0' } } }],
  paths: {
    '/status': { get: { summary: 'Daemon, machine, kernel and persistence status', responses: { 200: { description: 'status object' } } } },
    '/state': { get: { summary: 'Observable state fingerprint (what journal replay must reproduce), text/plain "path=value" lines', responses: { 200: { description: 'text' } } } },
    '/sysfs': {
      get: {
        summary: 'Read a sysfs node: file contents (show() runs as a kernel task), directory entries or link target',
        parameters: [pathParam],
        responses: {
          200: { description: '{path, type: "file", mode, data} | {path, type: "dir", mode, entries} | {path, type: "link", target}' },
          400: errResp('invalid path'),
          403: errResp('EACCES (e.g. a write-only attribute)'),
          404: errResp('ENOENT'),
          422: errResp('other errno from show()'),
        },
      },
      put: {
        summary: 'Write an attribute: one store() call, like one write(2). Body {"data": "..."} (JSON) or the raw bytes (text/plain)',
        parameters: [pathParam],
        requestBody: {
          required: true,
          content: {
            'application/json': { schema: { type: 'object', additionalProperties: false, required: ['data'], properties: { data: { type: 'string' } } } },
            'text/plain': { schema: { type: 'string' } },
          },
        },
        responses: {
          200: { description: '{path, count, journal_seq}' },
          400: errResp('invalid path/body or a directory'),
          403: errResp('EACCES/EPERM'),
          404: errResp('ENOENT'),
          409: errResp('EBUSY, EADDRINUSE, EADDRNOTAVAIL, EEXIST'),
          413: errResp('body too large (64 KiB)'),
          415: errResp('unsupported content type'),
          422: errResp('any other errno from store(), e.g. EINVAL, ENODEV'),
        },
      },
    },
    '/hmc': {
      post: {
        summary: 'HMC/SE operation on the machine; the CHSC-notified AP bus rescan runs before the reply',
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                additionalProperties: false,
                required: ['op', 'id'],
                properties: {
                  op: {
                    enum: ['add-adapter', 'remove-adapter', 'add-usage-domain', 'remove-usage-domain', 'add-control-domain', 'remove-control-domain', 'card-config', 'checkstop'],
                  },
                  id: { type: 'integer', minimum: 0, maximum: 255 },
                  on: { type: 'boolean', description: 'required for card-config and checkstop, invalid otherwise' },
                },
              },
            },
          },
        },
        responses: { 200: { description: '{op, id, on?, changed, journal_seq}' }, 400: errResp('invalid request'), 422: errResp('rejected by the machine (id out of range, not installed)') },
      },
    },
    '/dmesg': {
      get: {
        summary: 'The printk ring',
        parameters: [
          { name: 'since', in: 'query', schema: { type: 'integer', minimum: 0 }, description: 'first sequence number' },
          { name: 'format', in: 'query', schema: { enum: ['text', 'raw', 'kmsg', 'json'] } },
        ],
        responses: { 200: { description: 'dmesg text, or {next, records} for json' }, 400: errResp('bad parameter') },
      },
    },
    '/events': {
      get: {
        summary: 'Server-sent events: dmesg records, uevents, journal entries and guest events (start, stop, device_add, device_del, reset; req and cfg_chg notifications QEMU handled)',
        parameters: [{ name: 'types', in: 'query', schema: { type: 'string', example: 'dmesg,uevent' }, description: 'comma-separated subset of dmesg, uevent, journal, guest' }],
        responses: { 200: { description: 'text/event-stream; each event has "event: <type>" and JSON data' }, 400: errResp('unknown type') },
      },
    },
    '/journal': {
      get: {
        summary: 'Acknowledged state-changing operations',
        parameters: [{ name: 'since', in: 'query', schema: { type: 'integer', minimum: 0 } }],
        responses: { 200: { description: '{last, entries: [{seq, vt, wall, op}]}' } },
      },
    },
    '/export': {
      post: {
        summary: 'The sysfs tree (or a subtree) as NDJSON, parents first: {path, type, mode, data?|target?, errno?} per node',
        requestBody: { content: { 'application/json': { schema: { type: 'object', additionalProperties: false, properties: { under: { type: 'string', example: '/sys/bus/ap' } } } } } },
        responses: { 200: { description: 'application/x-ndjson' }, 400: errResp('invalid path') },
      },
    },
    '/guests': {
      get: { summary: 'Running guests', responses: { 200: { description: '{guests: [GuestSummary]}' } } },
      post: {
        summary: 'Start a guest: qemu-system-s390x -name NAME -device vfio-ap,id=vfio_ap0,sysfsdev=/sys/bus/mdev/devices/MDEV (journaled; restarted after a restart of the daemon)',
        requestBody: { required: true, content: { 'application/json': { schema: guestBody(true) } } },
        responses: {
          201: { description: 'GuestSummary and journal_seq' },
          400: errResp('invalid name, UUID or body'),
          404: errResp('the mdev does not exist'),
          409: errResp('a guest with this name is running'),
          422: errResp("QEMU refused (its error text, e.g. 'failed to open /dev/vfio/0: Device or resource busy')"),
        },
      },
      delete: {
        summary: 'Stop a guest (quit: device unrealized, VM closed; journaled)',
        parameters: [nameParam],
        responses: { 200: { description: '{name, stopped, journal_seq}' }, 404: errResp('no such guest') },
      },
    },
    '/guests/view': {
      get: {
        summary: "The guest's view: CRYCB masks, TAPQ from vCPU 0 on every APQN in the CRYCB (cc, rc, flags E/R/F/I/A), its AP bus devices",
        parameters: [nameParam],
        responses: { 200: { description: '{name, mdev, crycb: {apm, aqm, adm}, tapq: [{apqn, cc, rc, flags}], ap_bus: {devices, scans}, cfg_chg_handled, req_handled}' }, 404: errResp('no such guest') },
      },
    },
    '/guests/device': {
      post: {
        summary: 'device_add vfio-ap,id=vfio_ap0,sysfsdev=... (journaled)',
        requestBody: { required: true, content: { 'application/json': { schema: guestBody(true) } } },
        responses: { 200: { description: 'GuestSummary and journal_seq' }, 404: errResp('no such guest or mdev'), 422: errResp("QEMU's error text (e.g. No 'ap-bus' bus found for device 'vfio-ap')") },
      },
      delete: {
        summary: 'device_del vfio_ap0 (journaled)',
        parameters: [nameParam],
        responses: { 200: { description: 'GuestSummary and journal_seq' }, 404: errResp('no such guest'), 422: errResp("QEMU's error text (Device 'vfio_ap0' not found)") },
      },
    },
    '/guests/reset': {
      post: {
        summary: 'system_reset: VFIO_DEVICE_RESET, the guest reboots (journaled)',
        requestBody: { required: true, content: { 'application/json': { schema: guestBody(false) } } },
        responses: { 200: { description: 'GuestSummary and journal_seq' }, 404: errResp('no such guest') },
      },
    },
    '/shutdown': { post: { summary: 'Unmount, snapshot and stop the daemon (apsim down)', responses: { 202: { description: '{ok, pid}' } } } },
    '/openapi.json': { get: { summary: 'This document', responses: { 200: { description: 'OpenAPI 3.1' } } } },
  },
  components: {
    schemas: {
      Error: {
        type: 'object',
        required: ['error'],
        properties: {
          error: { type: 'string' },
          errno: { type: 'integer' },
          code: { type: 'string', example: 'EINVAL' },
          message: { type: 'string', example: 'Invalid argument' },
          path: { type: 'string' },
        },
      },
    },
  },
} as const;
