-- +goose Up
CREATE TYPE item_kind AS ENUM ('widget', 'gadget');
ALTER TABLE items ADD COLUMN kind item_kind NOT NULL DEFAULT 'widget';
CREATE VIEW item_names AS SELECT name FROM items;

-- +goose StatementBegin
CREATE FUNCTION item_count() RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT count(*) FROM items
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION item_count();
DROP VIEW item_names;
ALTER TABLE items DROP COLUMN kind;
DROP TYPE item_kind;
