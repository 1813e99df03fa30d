-- The worker's role for docker compose (README "Database roles"): run by the postgres image on a fresh volume.
-- `keywarden` (POSTGRES_USER) owns the tables and runs the migrations; the worker connects as keywarden_worker.
CREATE ROLE keywarden_runtime NOLOGIN;
CREATE ROLE keywarden_worker LOGIN PASSWORD 'keywarden-worker' IN ROLE keywarden_runtime;
