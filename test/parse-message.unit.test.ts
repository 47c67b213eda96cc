import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  BadRequestError,
  ImgcacheError,
  ProtocolError,
  RejectedError,
  ServerError,
  UnknownCommandError,
} from '../src/errors.ts';
import {
  isKnownErrorCode,
  type JsonObject,
  parseErrorBody,
  parseHello,
  parseJsonBody,
  parseNotice,
  parseReceipt,
  parseReject,
  parseReply,
  parseRequest,
  parseRequestBody,
  parseStreamEnd,
  parseWelcome,
} from '../src/protocol/index.ts';

const SHA = 'ab'.repeat(32);
const QUOTA = { limit: 3, used: 1, remaining: 2 };
const SESSION = { name: 'client-42', code: 108, tier: 'bronze', canReadUsage: false };

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  assert.unreachable('expected an error');
}

/** The `code` of what `fn` throws (and the error, for further checks). */
function codeOf(fn: () => unknown): string {
  const error = thrown(fn);
  assert.instance(error, ImgcacheError);
  return error instanceof ImgcacheError ? error.code : '';
}

function bytes(text: string): Buffer {
  return Buffer.from(text, 'utf8');
}

// ---- [P-5] bodies ----------------------------------------------------------------------------------------------

const BAD_BODIES: [string, Buffer][] = [
  ['invalid UTF-8 (lone continuation byte)', Buffer.from([0x7b, 0x80, 0x7d])],
  ['invalid UTF-8 (overlong encoding)', Buffer.from([0x7b, 0x22, 0xc0, 0xaf, 0x22, 0x3a, 0x31, 0x7d])],
  ['invalid UTF-8 (truncated sequence)', Buffer.from([0x7b, 0x22, 0xe6, 0x97, 0x22, 0x3a, 0x31, 0x7d])],
  ['invalid UTF-8 (encoded surrogate)', Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22])],
  ['a byte order mark', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes('{"id":1}')])],
  ['empty', Buffer.alloc(0)],
  ['not JSON', bytes('hello')],
  ['truncated JSON', bytes('{"id":1')],
  ['a JSON array', bytes('[1,2]')],
  ['a JSON string', bytes('"list"')],
  ['a JSON number', bytes('42')],
  ['JSON null', bytes('null')],
  ['JSON true', bytes('true')],
];

for (const [name, body] of BAD_BODIES) {
  test(`[P-5] a body that is ${name} is malformed-message`, () => {
    const error = thrown(() => parseJsonBody(body));
    assert.instance(error, ProtocolError);
    if (error instanceof ProtocolError) {
      assert.is(error.code, 'malformed-message');
      assert.is(error.fatal, true);
      assert.is(error.requestId, null);
    }
  });
}

test('[P-5] a UTF-8 JSON object is parsed, with whitespace around it and non-ASCII text', () => {
  assert.equal(parseJsonBody(bytes(' {"image":"日本.png","n":[1]}\n')), { image: '日本.png', n: [1] });
  assert.equal(parseJsonBody(new Uint8Array(bytes('{}'))), {});
});

/** Bodies of RECEIVED frames: the plain form read straight from its bytes, and every other form, good or bad. */
const RECEIPT_BODIES = [
  '{"id":7}',
  '{"id":0}',
  '{"id":4294967295}',
  '{"id":99999999999}',
  '{"id":07}',
  '{"id":-1}',
  '{"id":1.5}',
  '{"id":}',
  '{"id":"7"}',
  '{"id":7,"bytes":1024}',
  '{"id":7,"id":8}',
  '{ "id": 7 }',
  '{"\\u0069d":7}',
  '{"id":7}\n',
  '{"id":7',
  '[7]',
  '',
];

test('[P-40] a RECEIVED body is read as parseJsonBody reads it, the plain {"id":N} straight from its bytes', () => {
  const outcome = (parse: () => unknown) => {
    try {
      return { value: parse() };
    } catch (error) {
      return { code: (error as ImgcacheError).code, message: (error as Error).message };
    }
  };
  for (const body of RECEIPT_BODIES) {
    assert.equal(
      outcome(() => parseReceipt(bytes(body))),
      outcome(() => parseJsonBody(bytes(body))),
      body,
    );
  }
  assert.equal(parseReceipt(bytes('{"id":4294967295}')), { id: 4294967295 });
});

/** Bodies of REQUEST frames: the plain get read straight from its bytes, and every other form, good or bad. */
const REQUEST_BODIES: Buffer[] = [
  '{"id":1,"command":"get","image":"cat.png"}',
  '{"id":0,"command":"get","image":""}',
  '{"id":4294967295,"command":"get","image":"日本 猫.png"}',
  '{"id":4294967296,"command":"get","image":"cat.png"}',
  '{"id":01,"command":"get","image":"cat.png"}',
  '{"id":1,"command":"get","image":"a\\"b.png"}',
  '{"id":1,"command":"get","image":"\\u0063at.png"}',
  '{"id":1,"command":"get","image":"cat.png"}"}',
  `{"id":1,"command":"get","image":"cat.png","have":"${'ab'.repeat(32)}"}`,
  '{"id":1,"command":"get","image":"cat.png","image":"dog.png"}',
  '{"command":"get","id":1,"image":"cat.png"}',
  '{"id":1,"command":"get","image":7}',
  '{"id":1, "command":"get","image":"cat.png"}',
  '{"id":1,"command":"gets","image":"cat.png"}',
  '{"id":1,"command":"list"}',
  '{"id":1,"command":"get","image":"\u007f.png"}',
].map((text) => Buffer.from(text, 'utf8'));
REQUEST_BODIES.push(
  Buffer.concat([Buffer.from('{"id":1,"command":"get","image":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]),
  Buffer.concat([Buffer.from('{"id":1,"command":"get","image":"'), Buffer.from([0x01]), Buffer.from('"}')]),
  Buffer.concat([Buffer.from('{"id":1,"command":"get","image":"'), Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('"}')]),
);

test('[P-5] [P-15] [P-50] a REQUEST body is read as parseRequest(parseJsonBody()) reads it, the plain get straight', () => {
  const outcome = (parse: () => unknown) => {
    try {
      return { value: parse() };
    } catch (error) {
      const { name, message } = error as Error;
      const { code, requestId, request } = error as { code?: string; requestId?: unknown; request?: unknown };
      return { name, message, code, requestId, request };
    }
  };
  for (const body of REQUEST_BODIES) {
    assert.equal(
      outcome(() => parseRequestBody(body)),
      outcome(() => parseRequest(parseJsonBody(body))),
      body.toString('utf8'),
    );
  }
  assert.equal(parseRequestBody(bytes('{"id":7,"command":"get","image":"a b.png"}')), {
    id: 7,
    command: 'get',
    image: 'a b.png',
  });
});

// ---- [P-8] [P-11] HELLO ----------------------------------------------------------------------------------------

const BAD_HELLOS: [string, JsonObject][] = [
  ['without versions', { client: 'x' }],
  ['with versions null', { versions: null }],
  ['with versions a number', { versions: 1 }],
  ['with versions a string', { versions: '1' }],
  ['with versions an object', { versions: { 0: 1 } }],
  ['with versions empty', { versions: [] }],
  ['with versions holding a non-integer', { versions: [1.5] }],
  ['with versions holding a string', { versions: [1, '2'] }],
  ['with versions holding zero', { versions: [0] }],
  ['with versions holding a negative', { versions: [-1] }],
  ['with versions holding null', { versions: [null] }],
  ['with versions holding an unsafe integer', { versions: [2 ** 60] }],
];

for (const [name, obj] of BAD_HELLOS) {
  test(`[P-11] a HELLO ${name} is bad-hello`, () => {
    assert.is(
      codeOf(() => parseHello(obj)),
      'bad-hello',
    );
  });
}

test('[P-8] a HELLO with versions, client and credential', () => {
  assert.equal(parseHello({ versions: [1, 2], client: 'my-client/1.0', credential: null }), {
    versions: [1, 2],
    client: 'my-client/1.0',
  });
});

test('[P-6] [P-8] a HELLO ignores unknown fields and does not copy the credential', () => {
  const hello = parseHello({ versions: [1], credential: 'secret', future: { x: 1 }, compression: 'zstd' });
  assert.equal(hello, { versions: [1] });
});

test('[P-8] [P-51] a client name of up to 100 characters is kept whole, counted in code points', () => {
  assert.is(parseHello({ versions: [1], client: 'a'.repeat(100) }).client, 'a'.repeat(100));
  assert.is(parseHello({ versions: [1], client: '😀'.repeat(100) }).client, '😀'.repeat(100), '200 UTF-16 units');
  assert.is(parseHello({ versions: [1], client: 'café/1.0 (日本)' }).client, 'café/1.0 (日本)');
  assert.is(parseHello({ versions: [1], client: '' }).client, '');
});

const BAD_CLIENTS: [string, unknown][] = [
  ['101 characters', 'a'.repeat(101)],
  ['101 emoji', '😀'.repeat(101)],
  ['a number', 42],
  ['null', null],
  ['an array', ['x']],
  ['an object', { name: 'x' }],
  ['a newline', 'client\nforged log line'],
  ['a NUL', 'client\u0000'],
  ['an escape (ANSI colour)', '\u001b[31mred'],
  ['DEL', 'client\u007f'],
  ['a C1 control', 'client\u009b31m'],
  ['a lone surrogate', 'client\ud800'],
];

for (const [name, client] of BAD_CLIENTS) {
  test(`[P-8] [P-51] a HELLO whose client is ${name} is bad-hello`, () => {
    assert.is(
      codeOf(() => parseHello({ versions: [1], client })),
      'bad-hello',
    );
  });
}

// ---- [P-50] JSON numbers and member names ----------------------------------------------------------------------

const DUPLICATES: [string, string][] = [
  ['the same name twice', '{"id":1,"command":"list","id":2}'],
  ['a name and its escaped spelling', '{"command":"list","id":1,"\\u0069d":2}'],
  ['in a nested object', '{"id":1,"command":"list","x":{"a":1,"b":[{"c":1}],"a":2}}'],
  ['in an object inside an array', '{"id":1,"x":[1,{"k":"v","k":"w"}]}'],
];

for (const [name, text] of DUPLICATES) {
  test(`[P-50] a body with a duplicate member name (${name}) is malformed-message`, () => {
    assert.is(
      codeOf(() => parseJsonBody(bytes(text))),
      'malformed-message',
    );
  });
}

test('[P-50] the same name in different objects, and names that only look alike, are not duplicates', () => {
  const text = '{"a":{"a":1,"b":2},"b":[{"a":1},{"a":2}],"c\\"":"{\\"a\\":1,\\"a\\":2}","C":1,"c":",\\"c\\":"}';
  assert.equal(Object.keys(parseJsonBody(bytes(text))), ['a', 'b', 'c"', 'C', 'c']);
});

test('[P-50] an id is read by its value: 1.0, 1e2 and -0 are the integers 1, 100 and 0', () => {
  for (const [text, id] of [
    ['1.0', 1],
    ['1e2', 100],
    ['100E0', 100],
    ['-0', 0],
    ['4294967295', 4294967295],
    ['4.294967295e9', 4294967295],
  ] as const) {
    const request = parseRequest(parseJsonBody(bytes(`{"id":${text},"command":"list"}`)));
    assert.is(request.id, id, text);
    assert.is(JSON.stringify({ id: request.id }), `{"id":${id}}`, `${text} is echoed in plain digits`);
  }
});

test('[P-50] numbers that are not integers in range are not ids: bad-request with id null', () => {
  for (const text of ['1.5', '1e-1', '-1', '4294967296', '9007199254740993', '1e400', '"1"']) {
    const error = thrown(() => parseRequest(parseJsonBody(bytes(`{"id":${text},"command":"list"}`))));
    assert.instance(error, BadRequestError, text);
    assert.is((error as BadRequestError).requestId, null, text);
  }
});

test('[P-50] a version beyond 2^53 is not an integer: bad-hello', () => {
  assert.is(
    codeOf(() => parseHello(parseJsonBody(bytes('{"versions":[1,9007199254740993]}')))),
    'bad-hello',
  );
});

// ---- [P-15] REQUEST --------------------------------------------------------------------------------------------

/** Bad requests and the error they give: [input, code, requestId]. */
const BAD_REQUESTS: [string, JsonObject, string, number | null][] = [
  ['missing id', { command: 'list' }, 'bad-request', null],
  ['id null', { id: null, command: 'list' }, 'bad-request', null],
  ['id -1', { id: -1, command: 'list' }, 'bad-request', null],
  ['id 2^32', { id: 2 ** 32, command: 'list' }, 'bad-request', null],
  ['id 1.5', { id: 1.5, command: 'list' }, 'bad-request', null],
  ['id a string', { id: '7', command: 'list' }, 'bad-request', null],
  ['id an array', { id: [7], command: 'list' }, 'bad-request', null],
  ['missing command', { id: 7 }, 'bad-request', 7],
  ['command a number', { id: 7, command: 3 }, 'bad-request', 7],
  ['command null', { id: 7, command: null }, 'bad-request', 7],
  ['unknown command', { id: 7, command: 'delete' }, 'unknown-command', 7],
  ['command in upper case', { id: 8, command: 'LIST' }, 'unknown-command', 8],
  ['empty command', { id: 9, command: '' }, 'unknown-command', 9],
  ['get without image', { id: 10, command: 'get' }, 'bad-request', 10],
  ['get with image a number', { id: 11, command: 'get', image: 5 }, 'bad-request', 11],
  ['get with image null', { id: 12, command: 'get', image: null }, 'bad-request', 12],
];

for (const [name, obj, code, requestId] of BAD_REQUESTS) {
  test(`[P-15] [P-26] a request with ${name} is ${code} with id ${requestId}`, () => {
    const error = thrown(() => parseRequest(obj));
    assert.instance(error, ProtocolError);
    if (error instanceof ProtocolError) {
      assert.is(error.code, code);
      assert.is(error.requestId, requestId);
      assert.is(error.fatal, false, '[P-26] bad-request and unknown-command are not fatal');
    }
  });
}

test('[P-15] error classes carry what the server needs to answer', () => {
  const unknown = thrown(() => parseRequest({ id: 3, command: 'rm' }));
  assert.instance(unknown, UnknownCommandError);
  if (unknown instanceof UnknownCommandError) assert.is(unknown.command, 'rm');
  assert.instance(
    thrown(() => parseRequest({ id: 3, command: 'get' })),
    BadRequestError,
  );
});

test('[P-52] a bad-request carries the command and a get image it could read, for the record', () => {
  const parts = (obj: JsonObject) => {
    const error = thrown(() => parseRequest(obj));
    assert.instance(error, BadRequestError);
    return (error as BadRequestError).request;
  };
  assert.equal(parts({ id: 1, command: 'get', image: 'sunset.png', have: 'ABC' }), {
    command: 'get',
    image: 'sunset.png',
  });
  assert.equal(parts({ id: 'x', command: 'get', image: 'a.png' }), { command: 'get', image: 'a.png' });
  assert.equal(parts({ id: 'x', command: 'list', image: 'a.png' }), { command: 'list' });
  assert.equal(parts({ id: 1, command: 'get', image: 7 }), { command: 'get' });
  assert.equal(parts({ id: 1, command: 7 }), {});
});

test('[P-15] valid requests of every command, ids at both ends of the range', () => {
  assert.equal(parseRequest({ id: 0, command: 'list' }), { id: 0, command: 'list' });
  assert.equal(parseRequest({ id: 4294967295, command: 'usage' }), { id: 4294967295, command: 'usage' });
  assert.equal(parseRequest({ id: 4, command: 'exit' }), { id: 4, command: 'exit' });
  assert.equal(parseRequest({ id: 7, command: 'get', image: 'sunset.png' }), {
    id: 7,
    command: 'get',
    image: 'sunset.png',
  });
});

test('[P-6] [P-15] a request ignores unknown fields, and fields its command does not use', () => {
  assert.equal(parseRequest({ id: 1, command: 'list', image: 'x.png', priority: 'high' }), { id: 1, command: 'list' });
  assert.equal(parseRequest({ id: 2, command: 'get', image: '../etc/passwd', range: [0, 10] }), {
    id: 2,
    command: 'get',
    image: '../etc/passwd',
  });
});

test('[P-15] fields are read as own properties, never from the prototype', () => {
  const obj = parseJsonBody(bytes('{"__proto__":{"id":5,"command":"list"}}'));
  assert.is(
    codeOf(() => parseRequest(obj)),
    'bad-request',
  );
  assert.is(
    codeOf(() => parseRequest({ id: 1, command: 'toString' })),
    'unknown-command',
  );
});

test('[P-5] [P-15] a REQUEST from bytes: body then request', () => {
  assert.equal(parseRequest(parseJsonBody(bytes('{"id":1,"command":"list"}'))), { id: 1, command: 'list' });
});

// ---- client side: WELCOME --------------------------------------------------------------------------------------

const WELCOME = {
  version: 1,
  server: 'imgcache/0.1.0',
  session: SESSION,
  quota: { limit: 3, used: 0, remaining: 3 },
  limits: { maxRequestBytes: 4096, maxFrameBytes: 1048576, idleTimeoutMs: 300000 },
};

test('[P-12] [P-6] a WELCOME is parsed; unknown fields are ignored at every level', () => {
  assert.equal(parseWelcome(WELCOME), WELCOME);
  const extended = {
    ...WELCOME,
    motd: 'hi',
    session: { ...SESSION, region: 'eu' },
    limits: { ...WELCOME.limits, maxStreams: 2 },
  };
  assert.equal(parseWelcome(extended), WELCOME);
});

const BAD_WELCOMES: [string, JsonObject][] = [
  ['without version', { ...WELCOME, version: undefined }],
  ['with version 0', { ...WELCOME, version: 0 }],
  ['without server', { ...WELCOME, server: undefined }],
  ['with session a string', { ...WELCOME, session: 'client-42' }],
  ['with session.code a string', { ...WELCOME, session: { ...SESSION, code: '108' } }],
  ['with session.canReadUsage a string', { ...WELCOME, session: { ...SESSION, canReadUsage: 'no' } }],
  ['without quota', { ...WELCOME, quota: undefined }],
  ['with quota.remaining negative', { ...WELCOME, quota: { limit: 3, used: 4, remaining: -1 } }],
  ['without limits', { ...WELCOME, limits: undefined }],
  ['with maxFrameBytes 0', { ...WELCOME, limits: { ...WELCOME.limits, maxFrameBytes: 0 } }],
  ['with maxRequestBytes over a u32', { ...WELCOME, limits: { ...WELCOME.limits, maxRequestBytes: 2 ** 32 } }],
];

for (const [name, obj] of BAD_WELCOMES) {
  test(`[P-12] a WELCOME ${name} is malformed-message`, () => {
    assert.is(
      codeOf(() => parseWelcome(obj)),
      'malformed-message',
    );
  });
}

// ---- client side: REJECT ---------------------------------------------------------------------------------------

test('[P-13] REJECTs with their extra fields', () => {
  const full = {
    reason: 'server-full',
    message: 'at capacity',
    occupancy: { open: 3, capacity: 3 },
    retryAfterMs: 1000,
  };
  assert.equal(parseReject(full), full);
  const version = { reason: 'unsupported-version', message: 'no common version', supported: [1] };
  assert.equal(parseReject(version), version);
  assert.equal(parseReject({ reason: 'bad-hello', message: 'no versions', hint: 'x' }), {
    reason: 'bad-hello',
    message: 'no versions',
  });
});

test('[P-13] [P-33] a REJECT with an unknown reason is kept verbatim', () => {
  const reject = parseReject({ reason: 'maintenance', message: 'back soon' });
  assert.is(reject.reason, 'maintenance');
  const error = new RejectedError(reject);
  assert.is(error.code, 'rejected');
  assert.is(error.reject.reason, 'maintenance');
});

const BAD_REJECTS: [string, JsonObject][] = [
  ['without reason', { message: 'x' }],
  ['with an empty reason', { reason: '', message: 'x' }],
  ['without message', { reason: 'server-full' }],
  ['with occupancy a number', { reason: 'server-full', message: 'x', occupancy: 3 }],
  ['with retryAfterMs negative', { reason: 'server-full', message: 'x', retryAfterMs: -5 }],
  ['with supported not an array', { reason: 'unsupported-version', message: 'x', supported: 1 }],
  ['with supported holding a string', { reason: 'unsupported-version', message: 'x', supported: ['1'] }],
];

for (const [name, obj] of BAD_REJECTS) {
  test(`[P-13] a REJECT ${name} is malformed-message`, () => {
    assert.is(
      codeOf(() => parseReject(obj)),
      'malformed-message',
    );
  });
}

// ---- client side: REPLY ----------------------------------------------------------------------------------------

const IMAGE = { name: 'sunset.png', bytes: 18214, modified: '2026-11-25T10:00:00.000Z', sha256: SHA };
const REPLIES = {
  list: {
    id: 1,
    command: 'list',
    status: 'ok',
    images: [IMAGE],
    more: false,
    next: null,
    session: SESSION,
    quota: QUOTA,
  },
  get: {
    id: 7,
    command: 'get',
    status: 'ok',
    image: 'sunset.png',
    bytes: 18214,
    sha256: SHA,
    modified: '2026-11-25T10:00:00.000Z',
    stream: true,
    quota: QUOTA,
  },
  usage: { id: 3, command: 'usage', status: 'ok', contentType: 'application/json', stream: true, quota: QUOTA },
  exit: { id: 4, command: 'exit', status: 'ok', quota: QUOTA },
} as const;

for (const [command, reply] of Object.entries(REPLIES)) {
  test(`[P-18] [P-19] [P-22] [P-23] a ${command} REPLY is parsed, unknown fields ignored ([P-6])`, () => {
    assert.equal(parseReply(reply), reply);
    assert.equal(parseReply({ ...reply, servedBy: 'node-2', quota: { ...QUOTA, resetsAt: null } }), reply);
  });
}

test('[P-18] an empty list REPLY, and an image sha256 in upper case comes back in lower case', () => {
  assert.equal(parseReply({ ...REPLIES.list, images: [] }), { ...REPLIES.list, images: [] });
  const upper = parseReply({ ...REPLIES.list, images: [{ ...IMAGE, sha256: SHA.toUpperCase() }] });
  assert.ok(upper.command === 'list' && upper.images[0]?.sha256 === SHA);
});

const BAD_REPLIES: [string, JsonObject][] = [
  ['with an unknown command', { ...REPLIES.exit, command: 'delete' }],
  ['without command', { ...REPLIES.exit, command: undefined }],
  ['with status "error"', { ...REPLIES.exit, status: 'error' }],
  ['without id', { ...REPLIES.exit, id: undefined }],
  ['with id null', { ...REPLIES.exit, id: null }],
  ['without quota ([P-17])', { ...REPLIES.exit, quota: undefined }],
  ['list without images', { ...REPLIES.list, images: undefined }],
  ['list with an image missing sha256', { ...REPLIES.list, images: [{ ...IMAGE, sha256: undefined }] }],
  ['list with an image sha256 too short', { ...REPLIES.list, images: [{ ...IMAGE, sha256: 'abc' }] }],
  ['list without session', { ...REPLIES.list, session: undefined }],
  ['get without stream', { ...REPLIES.get, stream: undefined }],
  ['get with stream false', { ...REPLIES.get, stream: false }],
  ['get with bytes negative', { ...REPLIES.get, bytes: -1 }],
  ['get without image', { ...REPLIES.get, image: undefined }],
  ['usage with another content type', { ...REPLIES.usage, contentType: 'text/plain' }],
];

for (const [name, obj] of BAD_REPLIES) {
  test(`[P-18] [P-19] a REPLY ${name} is malformed-message`, () => {
    assert.is(
      codeOf(() => parseReply(obj)),
      'malformed-message',
    );
  });
}

// ---- client side: ERROR, NOTICE, END ---------------------------------------------------------------------------

test('[P-26] ERROR bodies, with an id or null, with or without quota', () => {
  const withId = { id: 7, code: 'image-not-found', message: "no image named 'x.png'", fatal: false, quota: QUOTA };
  assert.equal(parseErrorBody(withId), withId);
  const noId = { id: null, code: 'malformed-message', message: 'not JSON', fatal: true };
  assert.equal(parseErrorBody({ ...noId, detail: 'x' }), noId);
});

test('[P-33] an ERROR with an unknown code is kept; ServerError carries the wire code and fatal', () => {
  const body = parseErrorBody({ id: 2, code: 'some-later-code', message: 'slow down', fatal: false, quota: QUOTA });
  assert.is(isKnownErrorCode(body.code), false);
  assert.is(isKnownErrorCode('quota-exhausted'), true);
  const error = new ServerError(body);
  assert.is(error.code, 'some-later-code');
  assert.is(error.fatal, false);
  assert.is(error.requestId, 2);
});

const BAD_ERRORS: [string, JsonObject][] = [
  ['without id', { code: 'bad-request', message: 'x', fatal: false }],
  ['with id -1', { id: -1, code: 'bad-request', message: 'x', fatal: false }],
  ['without code', { id: 1, message: 'x', fatal: false }],
  ['without message', { id: 1, code: 'bad-request', fatal: false }],
  ['without fatal', { id: 1, code: 'bad-request', message: 'x' }],
  ['with fatal a string', { id: 1, code: 'bad-request', message: 'x', fatal: 'yes' }],
  ['with quota a string', { id: 1, code: 'bad-request', message: 'x', fatal: false, quota: '3' }],
];

for (const [name, obj] of BAD_ERRORS) {
  test(`[P-26] an ERROR ${name} is malformed-message`, () => {
    assert.is(
      codeOf(() => parseErrorBody(obj)),
      'malformed-message',
    );
  });
}

test('[P-27] [P-28] [P-33] NOTICEs: known kinds, unknown kinds kept, unknown fields ignored', () => {
  const idle = { kind: 'idle-timeout', message: 'idle', closing: true };
  assert.equal(parseNotice({ ...idle, after: 300000 }), idle);
  assert.is(parseNotice({ kind: 'maintenance-soon', message: 'in 5 min', closing: false }).kind, 'maintenance-soon');
  for (const bad of [{ message: 'x', closing: true }, { kind: 'idle-timeout', message: 'x' }, { kind: 1 }]) {
    assert.is(
      codeOf(() => parseNotice(bad)),
      'malformed-message',
      JSON.stringify(bad),
    );
  }
});

test('[P-24] END: bytes and sha256 (lower-cased), unknown fields ignored', () => {
  assert.equal(parseStreamEnd({ bytes: 0, sha256: SHA, chunks: 0 }), { bytes: 0, sha256: SHA });
  assert.equal(parseStreamEnd({ bytes: 18214, sha256: SHA.toUpperCase() }), { bytes: 18214, sha256: SHA });
});

const BAD_ENDS: [string, JsonObject][] = [
  ['without bytes', { sha256: SHA }],
  ['with bytes 1.5', { bytes: 1.5, sha256: SHA }],
  ['with bytes a string', { bytes: '10', sha256: SHA }],
  ['without sha256', { bytes: 10 }],
  ['with sha256 of 63 digits', { bytes: 10, sha256: SHA.slice(1) }],
  ['with sha256 not hex', { bytes: 10, sha256: 'z'.repeat(64) }],
];

for (const [name, obj] of BAD_ENDS) {
  test(`[P-24] an END ${name} is malformed-message`, () => {
    assert.is(
      codeOf(() => parseStreamEnd(obj)),
      'malformed-message',
    );
  });
}

test.run();
