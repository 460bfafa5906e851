import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { connect, connectRpc, type TrellisClient } from '../../src/index';
import { loadDaemonTls } from '../../src/daemon/rpc/daemon-tls';
import { parseArgs, resolveOptions } from '../../src/daemon/options';
import { exposureWarning } from '../../src/daemon/rpc/rpc-server';
import { makeCertificates, type TestCertificates } from '../fixtures/certificates';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';
import { tempPath } from '../fixtures/setup';
import { expectRejects, expectThrows } from '../fixtures/trellis-errors';

describe('TLS on the RPC port: --rpc-tls-cert, --rpc-tls-key, --rpc-tls-ca', function () {
  this.timeout(60_000);
  let certs: TestCertificates;
  /** TLS, no client certificates asked. */
  let tlsOnly: TestDaemon;
  /** Mutual TLS and a token: instance 1, and instance 2 that copies from it. */
  let mutualA: TestDaemon;
  let mutualB: TestDaemon;
  let plain: TestDaemon;
  const token = 'tls-test-token';
  const opened: TrellisClient[] = [];
  const open = async (client: Promise<TrellisClient>): Promise<TrellisClient> => {
    opened.push(await client);
    return opened[opened.length - 1];
  };

  before(async () => {
    certs = makeCertificates();
    const { serverCert, serverKey, ca } = certs.files;
    const serve = ['--rpc-port', '0', '--rpc-tls-cert', serverCert, '--rpc-tls-key', serverKey];
    const mutual = [...serve, '--rpc-tls-ca', ca, '--rpc-token', token];
    [tlsOnly, mutualA, plain] = await Promise.all([
      startTestDaemon(serve),
      startTestDaemon([...mutual, '--instance-id', '1']),
      startTestDaemon(['--rpc-port', '0']),
    ]);
    mutualB = await startTestDaemon([...mutual, '--instance-id', '2', '--rpc-peer', `1=${mutualA.rpcEndpoint}`]);
  });
  after(async () => {
    for (const client of opened) await client.close();
    await Promise.all([tlsOnly, mutualA, mutualB, plain].map((daemon) => daemon?.stop()));
  });

  it('a remote client that trusts the CA puts and gets over TLS; a local client reads the same object', async () => {
    const remote = await open(connectRpc(tlsOnly.rpcEndpoint!, { tls: { ca: certs.pem('ca') } }));
    const bytes = Buffer.alloc(3 * 1024 * 1024 + 5);
    for (let i = 0; i < bytes.length; i += 997) bytes[i] = i & 0xff;
    const id = await remote.put(bytes, { name: 'tls/bytes' });
    assert.ok(((await remote.get('tls/bytes')) as Buffer).equals(bytes), 'read back over TLS');
    const local = await open(connect(tlsOnly.socket));
    assert.ok((await local.getBlob(id)).buffer.equals(bytes), 'read through the socket');
    const fromLocal = await local.put({ hello: 'over tls' });
    assert.deepEqual(await remote.get(fromLocal), { hello: 'over tls' });
  });

  it("a client that does not trust the daemon's certificate is refused: PermissionDenied, naming it", async () => {
    const endpoint = tlsOnly.rpcEndpoint!;
    const untrusted = new RegExp(`TLS certificate of trellisd at ${endpoint} is not trusted here .*check tls.ca`);
    await expectRejects(connectRpc(endpoint, { tls: { ca: certs.pem('otherCa') } }), 'PermissionDenied', untrusted);
    await expectRejects(connectRpc(endpoint, { tls: {} }), 'PermissionDenied', untrusted);
    // The certificate is for 127.0.0.1: another name fails the identity check.
    await expectRejects(
      connectRpc(endpoint, { tls: { ca: certs.pem('ca'), servername: 'store.example' } }),
      'PermissionDenied',
      /ERR_TLS_CERT_ALTNAME_INVALID/,
    );
  });

  it('plain and TLS do not mix: each side of the mismatch fails clearly', async () => {
    await expectRejects(
      connectRpc(tlsOnly.rpcEndpoint!),
      'Unavailable',
      `trellisd at ${tlsOnly.rpcEndpoint} closed the connection before answering the handshake; ` +
        'a daemon serving TLS (--rpc-tls-cert) drops plain connections: connect with { tls }',
    );
    await expectRejects(
      connectRpc(plain.rpcEndpoint!, { tls: { ca: certs.pem('ca') } }),
      'Unavailable',
      new RegExp(`trellisd at ${plain.rpcEndpoint} does not speak TLS on that port \\(ERR_SSL_\\w+\\); it serves`),
    );
    // The plain daemon is unharmed by the TLS hello it could not read.
    const client = await open(connectRpc(plain.rpcEndpoint!));
    assert.equal(await client.get(await client.put('still fine')), 'still fine');
  });

  it('mutual TLS: only a certificate the CA signed gets in, and the token still applies', async () => {
    const endpoint = mutualA.rpcEndpoint!;
    const ca = certs.pem('ca');
    await expectRejects(
      connectRpc(endpoint, { token, tls: { ca } }),
      'PermissionDenied',
      "this daemon's RPC port requires a client certificate signed by its --rpc-tls-ca; none was presented",
    );
    await expectRejects(
      connectRpc(endpoint, { token, tls: { ca, cert: certs.pem('otherCa'), key: certs.pem('otherKey') } }),
      'PermissionDenied',
      /requires a client certificate signed by its --rpc-tls-ca; the one presented fails: \w+/,
    );
    const withCert = { ca, cert: certs.pem('clientCert'), key: certs.pem('clientKey') };
    const noToken = connectRpc(endpoint, { tls: withCert });
    await expectRejects(noToken, 'PermissionDenied', 'RPC handshake refused: this daemon requires a token');
    const client = await open(connectRpc(endpoint, { token, tls: withCert }));
    assert.deepEqual(await client.get(await client.put([1, 2, 3])), [1, 2, 3]);
    await expectRejects(connectRpc(endpoint, { token }), 'Unavailable', /drops plain connections/);
  });

  it('migrate copies objects between two daemons over mutual TLS, each showing its certificate', async () => {
    const onA = await open(connect(mutualA.socket));
    const onB = await open(connect(mutualB.socket));
    const value = { rows: Array.from({ length: 5000 }, (_, i) => ({ i, s: `row ${i}` })) };
    const bytes = Buffer.alloc(2 * 1024 * 1024, 7);
    const ids = [await onA.put(value), await onA.put(bytes)];
    const copies = await Promise.all(ids.map((id) => onB.migrate(id)));
    const ofB = copies.every((copy) => parseInt(copy.slice(1, 5), 16) === mutualB.instanceId);
    assert.ok(ofB, 'the copies are objects of B');
    assert.deepEqual(await onB.get(copies[0]), value);
    assert.ok(((await onB.get(copies[1])) as Buffer).equals(bytes));
  });

  it('a daemon that requires TLS of its peers cannot copy from a plain one, and says why', async () => {
    const { serverCert, serverKey, ca } = certs.files;
    const tlsFiles = ['--rpc-tls-cert', serverCert, '--rpc-tls-key', serverKey, '--rpc-tls-ca', ca];
    const daemon = await startTestDaemon(['--instance-id', '3', ...tlsFiles, '--rpc-peer', `4=${plain.rpcEndpoint}`]);
    try {
      const client = await connect(daemon.socket);
      try {
        await expectRejects(client.migrate('o0004000000000001'), 'Unavailable', /does not speak TLS on that port/);
      } finally {
        await client.close();
      }
    } finally {
      await daemon.stop();
    }
  });

  it('a daemon warns at start when its RPC port takes no token', () => {
    const noToken = /^trellisd: warning: the RPC port \S+ takes no token: every local user can read, write and delete/m;
    assert.match(plain.output(), noToken);
    assert.match(tlsOnly.output(), noToken);
    assert.doesNotMatch(mutualA.output(), /warning/);
    // Beyond loopback: no token reaches further, and a token over plain TCP is readable on the way.
    const wide = exposureWarning('10.0.0.5:9600', { host: '0.0.0.0' });
    assert.match(wide!, /every local user and every host that reaches it can read, write and delete every object/);
    const clear = exposureWarning('10.0.0.5:9600', { host: '0.0.0.0', token });
    assert.match(clear!, /plain TCP beyond loopback: the token and every byte cross the network in the clear/);
    assert.equal(exposureWarning('10.0.0.5:9600', { host: '0.0.0.0', token, tls: {} }), undefined);
  });

  describe('options', () => {
    it('a certificate needs its key, and a CA needs both', () => {
      const pair = '--rpc-tls-cert and --rpc-tls-key come together; got only';
      expectThrows(() => resolveOptions({ rpcTlsCert: 'c.pem' }), 'InvalidArgument', `${pair} --rpc-tls-cert`);
      expectThrows(() => resolveOptions({ rpcTlsKey: 'k.pem' }), 'InvalidArgument', `${pair} --rpc-tls-key`);
      const caAlone = /--rpc-tls-ca ca.pem needs --rpc-tls-cert and --rpc-tls-key/;
      expectThrows(() => resolveOptions({ rpcTlsCa: 'ca.pem' }), 'InvalidArgument', caAlone);
      const parsed = parseArgs(['--rpc-tls-cert', 'c', '--rpc-tls-key=k', '--rpc-tls-ca', 'a']);
      assert.deepEqual(parsed, { rpcTlsCert: 'c', rpcTlsKey: 'k', rpcTlsCa: 'a' });
    });

    it('a file that cannot be read is IOError, one OpenSSL refuses is InvalidArgument; both name the files', () => {
      const missing = tempPath('missing.pem');
      const unreadable = { rpcTlsCert: missing, rpcTlsKey: certs.files.serverKey };
      expectThrows(() => loadDaemonTls(unreadable), 'IOError', `--rpc-tls-cert ${missing}: ENOENT`);
      const garbage = tempPath('garbage.pem');
      fs.writeFileSync(garbage, 'not a certificate\n');
      expectThrows(
        () => loadDaemonTls({ rpcTlsCert: certs.files.serverCert, rpcTlsKey: garbage }),
        'InvalidArgument',
        new RegExp(`cannot use the TLS files ${certs.files.serverCert}, ${garbage}: `),
      );
      // A key that is not the certificate's.
      expectThrows(
        () => loadDaemonTls({ rpcTlsCert: certs.files.serverCert, rpcTlsKey: certs.files.clientKey }),
        'InvalidArgument',
        /cannot use the TLS files .*key values mismatch/,
      );
    });

    it('a client cert without its key is refused before connecting', async () => {
      const halfPair = connectRpc('127.0.0.1:1', { tls: { cert: certs.pem('clientCert') } });
      await expectRejects(halfPair, 'InvalidArgument', 'tls.cert was given without tls.key');
    });
  });
});
