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

export const openapi = {
  openapi: '3.1.0',
  info: {
    title: 'apsim live host API',
    version: '1',
    description:
      'Control and observe a simulated s390 LPAR (AP bus, zcrypt; vfio_ap and guests later). Loopback only by default; ' +
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
        summary: 'Server-sent events: dmesg records, uevents and journal entries (guest events later)',
        parameters: [{ name: 'types', in: 'query', schema: { type: 'string', example: 'dmesg,uevent' }, description: 'comma-separated subset of dmesg, uevent, journal' }],
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
