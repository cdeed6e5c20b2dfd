-- No JIT compilation in propagation and re-derivation. Their cost estimates grow with the
-- curated table (a hash join over it for deleted keys), and past jit_above_cost (100000 by
-- default: a curated table of a few million rows) PostgreSQL would compile every statement's
-- expressions: with JIT forced on, a COPY of 250 people took 2.3-3.5 s instead of 0.6-0.7 s.
-- Their time goes to function calls and JSON, which JIT does not speed up.
ALTER FUNCTION lake.raw_propagate() SET jit = off;
ALTER FUNCTION lake.derive_service(text, text) SET jit = off;
