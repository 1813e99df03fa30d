import { AdminApiResponseError } from './errors.ts';
import type { ListPage, TokenPage } from './types.ts';

/**
 * The result of a list or report call: iterate it for the items of every page, or call `pages()` to see the pages
 * themselves (progress reporting, or committing a watermark per page). Nothing is fetched until iteration starts,
 * and each iteration starts again from the first page.
 */
export class Paged<T, P extends { data: T[] }> implements AsyncIterable<T> {
  readonly #pages: () => AsyncGenerator<P>;

  constructor(pages: () => AsyncGenerator<P>) {
    this.#pages = pages;
  }

  pages(): AsyncIterable<P> {
    return { [Symbol.asyncIterator]: () => this.#pages() };
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for await (const page of this.#pages()) yield* page.data;
  }

  /** Every item of every page. */
  async toArray(): Promise<T[]> {
    const all: T[] = [];
    for await (const item of this) all.push(item);
    return all;
  }
}

/** Walks an id-cursor list: `after_id` = the previous page's `last_id`, while `has_more`. */
export async function* walkListPages<T>(
  endpoint: string,
  fetchPage: (afterId: string | undefined) => Promise<ListPage<T>>,
): AsyncGenerator<ListPage<T>> {
  let afterId: string | undefined;
  for (;;) {
    const page = await fetchPage(afterId);
    yield page;
    if (!page.hasMore) return;
    // A server that says "more" without a new cursor would have the client loop forever on the same page.
    if (page.lastId === null || page.lastId === afterId) {
      throw stuck(endpoint, 'last_id', `has_more is true but last_id is ${JSON.stringify(page.lastId)}`);
    }
    afterId = page.lastId;
  }
}

/** Walks a report (or the rate limits): `page` = the previous page's `next_page`, while there is more. */
export async function* walkTokenPages<T>(
  endpoint: string,
  firstPage: string | undefined,
  fetchPage: (page: string | undefined) => Promise<TokenPage<T>>,
): AsyncGenerator<TokenPage<T>> {
  let token = firstPage;
  for (;;) {
    const page = await fetchPage(token);
    yield page;
    if (!page.hasMore) return;
    if (page.nextPage === null || page.nextPage === token) {
      throw stuck(endpoint, 'next_page', `has_more is true but next_page is ${JSON.stringify(page.nextPage)}`);
    }
    token = page.nextPage;
  }
}

function stuck(endpoint: string, field: string, problem: string): AdminApiResponseError {
  return new AdminApiResponseError({
    status: 200,
    errorType: 'invalid_response',
    requestId: null,
    endpoint,
    field,
    problem,
  });
}
