-- demo-mariadb: the `shop` database the broker's `shop` target reaches (run once, by the mariadb image, at
-- first start, in MARIADB_DATABASE).
CREATE TABLE customers (
  id          INT AUTO_INCREMENT PRIMARY KEY,
  name        VARCHAR(100) NOT NULL,
  email       VARCHAR(200) NOT NULL UNIQUE,  -- masked: `*.email` with: email
  card_number VARCHAR(32),                   -- masked: `*.card_number` with: partial, keep_last: 4
  created_at  TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE orders (
  id          INT AUTO_INCREMENT PRIMARY KEY,
  customer_id INT NOT NULL,
  total_cents INT NOT NULL,
  status      VARCHAR(20) NOT NULL DEFAULT 'open',
  FOREIGN KEY (customer_id) REFERENCES customers (id)
);

INSERT INTO customers (name, email, card_number) VALUES
  ('Ada Lovelace',     'ada@example.com',       '4111 1111 1111 1111'),
  ('Grace Hopper',     'grace@example.com',     '5500 0000 0000 0004'),
  ('Alan Turing',      'alan@example.com',      '3400 0000 0000 009'),
  ('Katherine Johnson','katherine@example.com', '6011 0000 0000 0004');

INSERT INTO orders (customer_id, total_cents, status) VALUES
  (1, 4200, 'paid'), (1, 1999, 'open'), (2, 12500, 'paid'), (3, 800, 'refunded'), (4, 3150, 'open');
