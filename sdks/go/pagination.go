package coexai

import (
	"context"
	"net/url"
	"strconv"
)

// Page is one page of a listing (the OpenAPI schemas Page_JobRead_, Page_FileRead_, ...): newest first;
// when HasMore, NextCursor asks for the next page.
type Page[T any] struct {
	Data       []T     `json:"data"`
	HasMore    bool    `json:"has_more"`
	NextCursor *string `json:"next_cursor"`
}

// Iter walks a listing page by page, fetching the next page when the current one is used up:
//
//	jobs := client.Jobs.List(ctx, coexai.JobListParams{Status: coexai.JobStatusCompleted})
//	for jobs.Next() {
//		job := jobs.Current()
//	}
//	if err := jobs.Err(); err != nil { ... }
type Iter[T any] struct {
	ctx     context.Context
	fetch   func(ctx context.Context, cursor string) (*Page[T], error)
	page    []T
	index   int
	cursor  string
	more    bool
	current T
	err     error
}

func newIter[T any](ctx context.Context, fetch func(ctx context.Context, cursor string) (*Page[T], error)) *Iter[T] {
	return &Iter[T]{ctx: ctx, fetch: fetch, more: true}
}

// Next moves to the next item, fetching a page when needed; false at the end of the listing or on an
// error (see Err).
func (it *Iter[T]) Next() bool {
	for it.index >= len(it.page) {
		if it.err != nil || !it.more {
			return false
		}
		page, err := it.fetch(it.ctx, it.cursor)
		if err != nil {
			it.err = err
			return false
		}
		it.page, it.index = page.Data, 0
		it.more = page.HasMore && page.NextCursor != nil && *page.NextCursor != ""
		if it.more {
			it.cursor = *page.NextCursor
		}
	}
	it.current = it.page[it.index]
	it.index++
	return true
}

// Current is the item Next moved to.
func (it *Iter[T]) Current() T {
	return it.current
}

// Err is the error that stopped Next, if any.
func (it *Iter[T]) Err() error {
	return it.err
}

// All walks the rest of the listing and returns its items.
func (it *Iter[T]) All() ([]T, error) {
	var items []T
	for it.Next() {
		items = append(items, it.Current())
	}
	return items, it.Err()
}

// listQuery is the query of a listing page: the filters, the page size and the cursor.
func listQuery(filters url.Values, limit int, cursor string) url.Values {
	query := url.Values{}
	for name, values := range filters {
		for _, value := range values {
			if value != "" {
				query.Add(name, value)
			}
		}
	}
	if limit > 0 {
		query.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		query.Set("cursor", cursor)
	}
	return query
}

// listPages returns an iterator over the listing at path.
func listPages[T any](ctx context.Context, c *Client, path string, filters url.Values, limit int) *Iter[T] {
	return newIter(ctx, func(ctx context.Context, cursor string) (*Page[T], error) {
		var page Page[T]
		if err := c.do(ctx, "GET", path, listQuery(filters, limit, cursor), nil, &page, 0); err != nil {
			return nil, err
		}
		return &page, nil
	})
}
