// The demo database's seed data: fake customers and orders, created once.
import type { PGlite } from '@electric-sql/pglite';

/** Fake people; emails at example.com, phone numbers in the fictional 555-01xx range, public test card numbers. */
export const DEMO_CUSTOMERS: ReadonlyArray<{ name: string; email: string; card_number: string; phone: string }> = [
  { name: 'Ava Thompson', email: 'ava.thompson@example.com', card_number: '4111111111111111', phone: '+1-202-555-0101' },
  { name: 'Liam Okafor', email: 'liam.okafor@example.com', card_number: '5555555555554444', phone: '+1-202-555-0102' },
  { name: 'Sofia Marquez', email: 'sofia.marquez@example.com', card_number: '4012888888881881', phone: '+1-202-555-0103' },
  { name: 'Noah Fischer', email: 'noah.fischer@example.com', card_number: '378282246310005', phone: '+1-202-555-0104' },
  { name: 'Mei Tanaka', email: 'mei.tanaka@example.com', card_number: '6011111111111117', phone: '+1-202-555-0105' },
  { name: 'Ethan Brooks', email: 'ethan.brooks@example.com', card_number: '5105105105105100', phone: '+1-202-555-0106' },
  { name: 'Amara Nwosu', email: 'amara.nwosu@example.com', card_number: '4242424242424242', phone: '+1-202-555-0107' },
  { name: 'Lucas Moreau', email: 'lucas.moreau@example.com', card_number: '371449635398431', phone: '+1-202-555-0108' },
  { name: 'Priya Raman', email: 'priya.raman@example.com', card_number: '6011000990139424', phone: '+1-202-555-0109' },
  { name: 'Jonas Lindqvist', email: 'jonas.lindqvist@example.com', card_number: '3566002020360505', phone: '+1-202-555-0110' },
  { name: 'Chloé Dubois', email: 'chloe.dubois@example.com', card_number: '4000056655665556', phone: '+1-202-555-0111' },
  { name: 'Mateo Rossi', email: 'mateo.rossi@example.com', card_number: '5200828282828210', phone: '+1-202-555-0112' },
  { name: 'Hannah Schmidt', email: 'hannah.schmidt@example.com', card_number: '3056930009020004', phone: '+1-202-555-0113' },
  { name: 'Omar Haddad', email: 'omar.haddad@example.com', card_number: '36227206271667', phone: '+1-202-555-0114' },
  { name: 'Grace Kim', email: 'grace.kim@example.com', card_number: '2223003122003222', phone: '+1-202-555-0115' },
  { name: 'Diego Alvarez', email: 'diego.alvarez@example.com', card_number: '6011981111111113', phone: '+1-202-555-0116' },
  { name: 'Zara Patel', email: 'zara.patel@example.com', card_number: '6200000000000005', phone: '+1-202-555-0117' },
  { name: 'Felix Wagner', email: 'felix.wagner@example.com', card_number: '4000002500000003', phone: '+1-202-555-0118' },
  { name: 'Isla MacLeod', email: 'isla.macleod@example.com', card_number: '4000002760000016', phone: '+1-202-555-0119' },
  { name: 'Kwame Mensah', email: 'kwame.mensah@example.com', card_number: '5454545454545454', phone: '+1-202-555-0120' },
];

/** Creates and fills `customers` and `orders` the first time only (a database that has `customers` is left alone). */
export async function seedDemoSchema(db: PGlite): Promise<void> {
  const existing = await db.query<{ t: string | null }>(`select to_regclass('public.customers')::text as t`);
  if (existing.rows[0]?.t) return;
  await db.transaction(async (tx) => {
    await tx.exec(`
      create table if not exists customers (
        id          serial primary key,
        name        text not null,
        email       text not null unique,
        card_number text not null,
        phone       text not null,
        created_at  timestamptz not null default now()
      );
      create table if not exists orders (
        id          serial primary key,
        customer_id integer not null references customers(id),
        amount      numeric(10, 2) not null,
        created_at  timestamptz not null default now()
      );
      comment on table customers is 'jit-broker demo data: fake people, example.com emails, public test card numbers';
      comment on table orders is 'jit-broker demo data';
    `);
    const base = Date.UTC(2024, 0, 8, 9, 30);
    const day = 86_400_000;
    for (const [i, c] of DEMO_CUSTOMERS.entries()) {
      await tx.query(
        `insert into customers (id, name, email, card_number, phone, created_at)
         values ($1, $2, $3, $4, $5, $6) on conflict do nothing`,
        [i + 1, c.name, c.email, c.card_number, c.phone, new Date(base + i * 9 * day).toISOString()],
      );
    }
    // 40 orders, deterministic: customer 1..20 twice, amounts between 5.00 and 500.00.
    for (let n = 0; n < 40; n++) {
      const customerId = ((n * 7) % DEMO_CUSTOMERS.length) + 1;
      const cents = 500 + ((n * 104_729) % 49_500);
      await tx.query(`insert into orders (id, customer_id, amount, created_at) values ($1, $2, $3, $4) on conflict do nothing`, [
        n + 1,
        customerId,
        (cents / 100).toFixed(2),
        new Date(base + 180 * day + n * 3 * day + (n % 5) * 3_600_000).toISOString(),
      ]);
    }
    await tx.exec(`
      select setval(pg_get_serial_sequence('customers', 'id'), (select max(id) from customers));
      select setval(pg_get_serial_sequence('orders', 'id'), (select max(id) from orders));
    `);
  });
}
