import { ConfigError, connectionSchema } from '../config/index.ts';
import { createDb, migrateToLatest } from '../db/index.ts';
import { type Command, loadCliConfig, parse } from './command.ts';

export const migrateCommand: Command = {
  summary: 'apply database migrations',
  usage:
    "keywarden migrate\n\n  Applies every pending migration to MIGRATION_DATABASE_URL (the role that owns the tables), or to\n  DATABASE_URL when it is not set; exits non-zero naming the migration that failed. With an organizations: list,\n  in each organization's schema (kw_<id>, created if missing; public for an entry that says so).",
  async run(args) {
    parse(args, {});
    const config = loadCliConfig();
    const url = config.env.migrationDatabaseUrl ?? config.env.databaseUrl;
    if (url === null) {
      throw new ConfigError([
        'MIGRATION_DATABASE_URL (or DATABASE_URL) is not set; `keywarden migrate` needs the role that owns the tables',
      ]);
    }
    const several = config.organizations.length > 1;
    for (const org of config.organizations) {
      const schema = connectionSchema(org);
      const db = createDb(url, { max: 1, schema });
      try {
        const result = await migrateToLatest(db, schema);
        const applied = result.results?.filter((r) => r.status === 'Success').map((r) => r.migrationName) ?? [];
        const said = applied.length ? `applied: ${applied.join(', ')}` : 'the schema is up to date';
        console.log(several ? `${org.id} (schema ${org.schema}): ${said}` : said);
      } finally {
        await db.destroy();
      }
    }
    return 0;
  },
};
