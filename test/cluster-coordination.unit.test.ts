/** [P-82] [P-83] The cluster's pure rules: the slot gate and the release of slots. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PendingReleases } from '../src/cluster/pending-releases.ts';
import { decideSlot } from '../src/cluster/slot-rules.ts';
import { ConfigError, resolveConfig } from '../src/config.ts';

const limits = { capacity: 3, maxSessionsPerIdentity: 1 };

test('[P-82] a slot is claimed while the cluster has fewer sessions open than its capacity', () => {
  assert.equal(decideSlot({ open: 2, heldByIdentity: 0 }, limits, undefined), { kind: 'claimed' });
  assert.equal(decideSlot({ open: 3, heldByIdentity: 0 }, limits, undefined), {
    kind: 'refused',
    reason: 'server-full',
    occupancy: { open: 3, capacity: 3 },
  });
});

test('[P-82] [P-65] an identity holding all its sessions across the cluster is refused too-many-sessions', () => {
  const verdict = decideSlot({ open: 1, heldByIdentity: 1 }, limits, 'acme');
  assert.equal(verdict, { kind: 'refused', reason: 'too-many-sessions', occupancy: { open: 1, capacity: 3 } });
  // capacity is judged first, as on one node
  assert.equal(decideSlot({ open: 3, heldByIdentity: 1 }, limits, 'acme').kind, 'refused');
  assert.equal(
    (decideSlot({ open: 3, heldByIdentity: 1 }, limits, 'acme') as { reason: string }).reason,
    'server-full',
  );
  // an anonymous HELLO is not counted against any identity
  assert.equal(decideSlot({ open: 1, heldByIdentity: 5 }, limits, undefined), { kind: 'claimed' });
});

test('[P-82] a slot is released once its session’s end is on record, and a failed release is tried again', () => {
  const releases = new PendingReleases();
  releases.held(7);
  releases.held(8);
  assert.equal(
    releases.recorded([{ session: 7, type: 'image-not-modified', data: { requestId: 1, image: 'a', sha256: '' } }]),
    false,
  );
  assert.equal(releases.recorded([{ session: 9, type: 'session-closed', data: { reason: 'client-closed' } }]), false);
  assert.equal(releases.recorded([{ session: 7, type: 'session-closed', data: { reason: 'client-closed' } }]), true);
  const due = releases.take();
  assert.equal(due, [7]);
  assert.equal(releases.take(), []);
  releases.failed(due);
  assert.equal(releases.take(), [7]);
  // a rejection on record (the admission could not be recorded) ends the connection too
  const remote = '127.0.0.1:1';
  const occupancy = { open: 1, capacity: 3 };
  releases.recorded([
    { session: 8, type: 'connection-rejected', data: { reason: 'history-unavailable', occupancy, remote } },
  ]);
  assert.equal(releases.take(), [8]);
  assert.equal(releases.heldCount, 0);
});

test('[P-83] a node declared lost forgets every slot it held: the cluster freed them', () => {
  const releases = new PendingReleases();
  releases.held(1);
  releases.held(2);
  releases.release(2);
  assert.equal(releases.forgetAll().sort(), [1]);
  assert.equal(releases.take(), []);
});

test('[P-83] a node is never taken for lost between two heartbeats: the lost time is at least two of them', () => {
  const flags = { 'node-heartbeat-ms': '1000', 'node-lost-after-ms': '1500' };
  assert.throws(
    () => resolveConfig(flags),
    (error: unknown) => error instanceof ConfigError,
  );
  const config = resolveConfig({ 'node-heartbeat-ms': '250', 'node-lost-after-ms': '500' });
  assert.equal([config.nodeHeartbeatMs, config.nodeLostAfterMs], [250, 500]);
  assert.equal([resolveConfig().nodeHeartbeatMs, resolveConfig().nodeLostAfterMs], [1000, 5000]);
});

test.run();
