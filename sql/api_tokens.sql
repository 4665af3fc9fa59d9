-- Migration V10, primary only: the credentials that let a client write.
--
-- Reads are public (storefront browsers make them); every write needs
-- `Authorization: Bearer <token>` with a scope that covers it:
--   catalog:write  products, styles, skus, related lists (a back office);
--   stock:write    stock movements only (what a checkout service gets);
--   read           reads, when the operator makes the catalog private
--                  (either write scope implies it).
--
-- A token is 32 random characters after the prefix `atl_` (about 190
-- bits), shown once by `atelier token create` and never stored: the table
-- keeps its SHA-256. A password KDF is not needed for random secrets of
-- this length (nothing to guess), and a plain hash lets every server check
-- a token in microseconds. `hint` is the token's first 12 characters
-- (`atl_` and 8 more, about 48 bits: too few to be worth guessing from,
-- enough for a person to tell tokens apart in `atelier token list`); the
-- servers use it to find the one row whose hash they compare in constant
-- time.
--
-- Revoking sets revoked_at; rows are never deleted, so the list keeps who
-- held what. Servers reload the unrevoked rows every
-- ATELIER_TOKEN_RELOAD_MS, which bounds how long a revoked token still
-- works. The table lives on the primary only: it is not published, so the
-- replicas (and anyone who can read them) never see even the hashes.

create table api_token (
    id         bigint generated always as identity primary key,
    name       text   not null check (char_length(name) between 1 and 255),
    scopes     text[] not null
               check (cardinality(scopes) > 0
                      and scopes <@ array['read', 'catalog:write', 'stock:write']::text[]),
    token_hash bytea  not null unique check (length(token_hash) = 32),
    hint       text   not null check (char_length(hint) = 12),
    created_at timestamptz not null default now(),
    revoked_at timestamptz
);
comment on table api_token is
    'Bearer tokens for writes (and private reads): SHA-256 only, revoked by revoked_at, never deleted.';

-- What the servers load, and nothing else: the writer (their write pool)
-- may read the hashes of live tokens, not create, change or revoke any.
-- Tokens are managed by the owner or an operator's superuser
-- (`atelier token create|list|revoke`).
grant select (id, name, scopes, token_hash, hint, revoked_at) on api_token to atelier_writer;
