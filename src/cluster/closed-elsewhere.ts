/**
 * [P-83] A node that finds it was declared lost ends its sessions at once, but their closes are on record already
 * (the node that declared it lost recorded them, reason `node-lost`): the history each connection records through
 * drops a close the cluster says was recorded elsewhere, so no session is closed twice.
 */
import type { HistoryRecorder } from '../server/server-context.ts';
import type { ClusterCoordinator } from './coordinator.ts';

export function withoutClosesRecordedElsewhere(history: HistoryRecorder, cluster: ClusterCoordinator): HistoryRecorder {
  return {
    record: (events, done) => history.record(events, done),
    recordFact(events, done) {
      const kept = events.filter(
        (event) =>
          !(event.type === 'session-closed' && event.session !== null && cluster.closedElsewhere(event.session)),
      );
      if (kept.length === events.length) history.recordFact(events, done);
      else if (kept.length > 0) history.recordFact(kept, done);
      else done?.(null);
    },
  };
}
