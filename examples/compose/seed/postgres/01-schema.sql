-- demo-pg: the `app` database the broker's `app` target reaches (run once, by the postgres image, at first start).
CREATE TABLE customers (
  id          serial PRIMARY KEY,
  name        text NOT NULL,
  email       text NOT NULL UNIQUE,   -- masked: `*.email` with: email
  card_number text,                   -- masked: `*.card_number` with: partial, keep_last: 4
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orders (
  id          serial PRIMARY KEY,
  customer_id int NOT NULL REFERENCES customers (id),
  total_cents int NOT NULL,
  status      text NOT NULL DEFAULT 'open'
);

INSERT INTO customers (name, email, card_number) VALUES
  ('Ada Lovelace',    'ada@example.com',    '4111 1111 1111 1111'),
  ('Grace Hopper',    'grace@example.com',  '5500 0000 0000 0004'),
  ('Alan Turing',     'alan@example.com',   '3400 0000 0000 009'),
  ('Katherine Johnson','katherine@example.com', '6011 0000 0000 0004');

INSERT INTO orders (customer_id, total_cents, status) VALUES
  (1, 4200, 'paid'), (1, 1999, 'open'), (2, 12500, 'paid'), (3, 800, 'refunded'), (4, 3150, 'open');
