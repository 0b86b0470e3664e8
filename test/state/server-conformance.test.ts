/** The state-store conformance suite on the real PostgreSQL and MariaDB/MySQL servers. */
import { runStateStoreConformance } from '../conformance/state-store.js';
import { createTestDatabase, SERVER_KINDS, serverName } from '../harness/databases.js';

for (const kind of SERVER_KINDS) {
  const db = await createTestDatabase(kind);
  // One database per file; each case gets the store emptied (its tables stay, migrated once).
  runStateStoreConformance(serverName(kind), async () => {
    await db.wipe();
    return db.open();
  });
}
