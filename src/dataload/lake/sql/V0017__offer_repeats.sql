-- lake.offer also tells which keys an earlier batch of the run offered already (a source that
-- repeats a record is not rejected for it: DESIGN.md section 8). Its result gains a column, which
-- CREATE OR REPLACE cannot do: dropped here, created again by R__runs.sql.
DROP FUNCTION lake.offer(bigint, jsonb, uuid[]);
DELETE FROM lake.repeatable_scripts WHERE name = 'runs';
