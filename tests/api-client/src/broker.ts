// A small client of the broker's API, typed entirely by the types openapi-typescript
// generates from /openapi.json: a renamed field or route in the document breaks this
// file's compilation, not a run in production.
import createClient from 'openapi-fetch';
import type { components, paths } from '../generated/api.js';

export type Account = components['schemas']['AccountView'];
export type Session = components['schemas']['SessionView'];

export function broker(baseUrl: string, apiKey: string) {
  return createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${apiKey}` } });
}

type Broker = ReturnType<typeof broker>;

/** Fails with the broker's own error message (the documented ErrorBody). */
function fail(what: string, error: components['schemas']['ErrorBody'] | undefined, status: number): never {
  throw new Error(`${what}: HTTP ${status}: ${error?.error.code ?? '?'}: ${error?.error.message ?? ''}`);
}

export async function firstApp(api: Broker): Promise<string> {
  const { data, error, response } = await api.GET('/v1/apps', { params: { query: { limit: 1 } } });
  if (!data) fail('list apps', error, response.status);
  const app = data.data[0];
  if (!app) throw new Error('the broker has no app');
  return app.id;
}

export async function startConnect(api: Broker, appId: string, endUser: string): Promise<Session> {
  const { data, error, response } = await api.POST('/v1/connect-sessions', {
    body: { app_id: appId, end_user: endUser },
  });
  if (!data) fail('create a connect session', error, response.status);
  return data;
}

export async function session(api: Broker, id: string): Promise<Session> {
  const { data, error, response } = await api.GET('/v1/connect-sessions/{id}', { params: { path: { id } } });
  if (!data) fail('read the connect session', error, response.status);
  return data;
}

export async function account(api: Broker, id: string): Promise<Account> {
  const { data, error, response } = await api.GET('/v1/accounts/{id}', { params: { path: { id } } });
  if (!data) fail('read the account', error, response.status);
  return data;
}

export async function accountsOf(api: Broker, appId: string, endUser: string): Promise<Account[]> {
  const { data, error, response } = await api.GET('/v1/accounts', {
    params: { query: { app_id: appId, end_user: endUser } },
  });
  if (!data) fail('list accounts', error, response.status);
  return data.data;
}

/** The documented error for a missing account: code, message and request id. */
export async function missingAccount(api: Broker): Promise<components['schemas']['ErrorBody']> {
  const { data, error, response } = await api.GET('/v1/accounts/{id}', { params: { path: { id: 'acc_missing' } } });
  if (data || !error) throw new Error('a missing account was found');
  if (response.status !== 404) throw new Error(`expected 404, got ${response.status}`);
  return error;
}
