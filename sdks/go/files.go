package coexai

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// FileStatus is a file's state: pending until its bytes are in and checked, then ready.
type FileStatus string

// The two states of a file.
const (
	FileStatusPending FileStatus = "pending"
	FileStatusReady   FileStatus = "ready"
)

// File is an uploaded file as the API returns it (the OpenAPI schema FileRead).
type File struct {
	ID          string                 `json:"id"`
	Filename    string                 `json:"filename"`
	ContentType string                 `json:"content_type"`
	SizeBytes   int64                  `json:"size_bytes"`
	SHA256      *string                `json:"sha256"`
	Status      FileStatus             `json:"status"`
	Metadata    map[string]interface{} `json:"metadata"`
	Livemode    bool                   `json:"livemode"`
	CreatedAt   time.Time              `json:"created_at"`
}

// FileUpload is a file to upload: its name, media type and bytes.
type FileUpload struct {
	// Filename is the name the file keeps (default: the base name of Content when it is an *os.File).
	Filename string
	// ContentType is its media type (default: from the name's extension, else application/octet-stream).
	// The service checks it against the bytes.
	ContentType string
	// Content is read from where it stands. When it is an io.Seeker (an *os.File, a *bytes.Reader) it is
	// streamed and read again for a retry; otherwise it is read into memory first.
	Content io.Reader
	// Metadata is kept with the file (Files.Upload only).
	Metadata map[string]interface{}
}

// uploadURLRequest is the body of POST /v1/files/upload-url (the OpenAPI schema UploadUrlRequest).
type uploadURLRequest struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	SizeBytes   int64  `json:"size_bytes"`
}

// UploadURL is where to PUT a large file's bytes (the OpenAPI schema UploadUrlResponse).
type UploadURL struct {
	UploadURL string    `json:"upload_url"`
	FileID    string    `json:"file_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// FileListParams filters Files.List; zero values do not filter.
type FileListParams struct {
	Status FileStatus
	// Limit is the page size (the service's default when 0).
	Limit int
}

// uploadTimeout is added to the client's timeout for a request carrying a file's bytes.
const uploadTimeout = 10 * time.Minute

// FilesService is the /v1/files part of the API (Client.Files).
type FilesService struct {
	client *Client
}

// source is an upload's bytes, readable once per attempt, and its size.
type source struct {
	open func() (io.Reader, error)
	size int64
}

func newSource(content io.Reader) (source, error) {
	if content == nil {
		return source{}, fmt.Errorf("coexai: the upload has no Content")
	}
	if seeker, ok := content.(io.ReadSeeker); ok {
		start, err := seeker.Seek(0, io.SeekCurrent)
		if err != nil {
			return source{}, fmt.Errorf("coexai: reading the upload: %w", err)
		}
		end, err := seeker.Seek(0, io.SeekEnd)
		if err != nil {
			return source{}, fmt.Errorf("coexai: reading the upload: %w", err)
		}
		open := func() (io.Reader, error) {
			if _, err := seeker.Seek(start, io.SeekStart); err != nil {
				return nil, err
			}
			return io.LimitReader(seeker, end-start), nil
		}
		return source{open: open, size: end - start}, nil
	}
	data, err := io.ReadAll(content)
	if err != nil {
		return source{}, fmt.Errorf("coexai: reading the upload: %w", err)
	}
	return source{open: func() (io.Reader, error) { return bytes.NewReader(data), nil }, size: int64(len(data))}, nil
}

// described fills in the upload's name and type when left out.
func (upload FileUpload) described() FileUpload {
	if upload.Filename == "" {
		if named, ok := upload.Content.(interface{ Name() string }); ok {
			upload.Filename = filepath.Base(named.Name())
		}
	}
	if upload.Filename == "" {
		upload.Filename = "upload"
	}
	if upload.ContentType == "" {
		upload.ContentType = mime.TypeByExtension(strings.ToLower(filepath.Ext(upload.Filename)))
		if kind, _, err := mime.ParseMediaType(upload.ContentType); err == nil {
			upload.ContentType = kind // without the "; charset=utf-8" Go adds to text types
		}
	}
	if upload.ContentType == "" {
		upload.ContentType = "application/octet-stream"
	}
	return upload
}

// Upload sends a file in one multipart request (POST /v1/files). It is built in memory: for large files
// use UploadLarge.
func (s *FilesService) Upload(ctx context.Context, upload FileUpload) (*File, error) {
	upload = upload.described()
	content, err := newSource(upload.Content)
	if err != nil {
		return nil, err
	}
	reader, err := content.open()
	if err != nil {
		return nil, err
	}
	var body bytes.Buffer
	form := multipart.NewWriter(&body)
	if upload.Metadata != nil {
		encoded, err := json.Marshal(upload.Metadata)
		if err != nil {
			return nil, fmt.Errorf("coexai: encoding the metadata: %w", err)
		}
		if err := form.WriteField("metadata", string(encoded)); err != nil {
			return nil, err
		}
	}
	header := textproto.MIMEHeader{}
	header.Set("Content-Disposition", mime.FormatMediaType("form-data", map[string]string{"name": "file", "filename": upload.Filename}))
	header.Set("Content-Type", upload.ContentType)
	part, err := form.CreatePart(header)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(part, reader); err != nil {
		return nil, fmt.Errorf("coexai: reading the upload: %w", err)
	}
	if err := form.Close(); err != nil {
		return nil, err
	}
	encoded := body.Bytes()
	request := call{method: "POST", path: "/files", contentType: form.FormDataContentType(), extra: uploadTimeout,
		body: func() (io.Reader, error) { return bytes.NewReader(encoded), nil }}
	var file File
	if err := s.client.doCall(ctx, request, &file); err != nil {
		return nil, err
	}
	return &file, nil
}

// UploadLarge sends a file in the three steps of a pre-signed upload: it asks for an upload URL
// (POST /v1/files/upload-url), PUTs the bytes there (streamed, without the API key: the URL carries its
// own signature) and confirms (POST /v1/files/{id}/confirm), which checks the bytes and makes the file
// ready.
func (s *FilesService) UploadLarge(ctx context.Context, upload FileUpload) (*File, error) {
	upload = upload.described()
	content, err := newSource(upload.Content)
	if err != nil {
		return nil, err
	}
	var target UploadURL
	ask := uploadURLRequest{Filename: upload.Filename, ContentType: upload.ContentType, SizeBytes: content.size}
	if err := s.client.do(ctx, "POST", "/files/upload-url", nil, ask, &target, 0); err != nil {
		return nil, err
	}
	put := call{method: "PUT", path: target.UploadURL, absolute: true, body: content.open,
		contentType: upload.ContentType, length: content.size, extra: uploadTimeout}
	if _, err := s.client.send(ctx, put); err != nil {
		return nil, err
	}
	return s.Confirm(ctx, target.FileID)
}

// Confirm ends a pre-signed upload whose bytes were PUT (POST /v1/files/{id}/confirm).
func (s *FilesService) Confirm(ctx context.Context, id string) (*File, error) {
	var file File
	if err := s.client.do(ctx, "POST", "/files/"+url.PathEscape(id)+"/confirm", nil, nil, &file, 0); err != nil {
		return nil, err
	}
	return &file, nil
}

// UploadPath uploads the file at path with Upload.
func (s *FilesService) UploadPath(ctx context.Context, path string) (*File, error) {
	opened, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer opened.Close()
	return s.Upload(ctx, FileUpload{Content: opened})
}

// Get returns a file's details (GET /v1/files/{id}).
func (s *FilesService) Get(ctx context.Context, id string) (*File, error) {
	var file File
	if err := s.client.do(ctx, "GET", "/files/"+url.PathEscape(id), nil, nil, &file, 0); err != nil {
		return nil, err
	}
	return &file, nil
}

// List walks the organization's files, newest first, a page at a time (GET /v1/files).
func (s *FilesService) List(ctx context.Context, params FileListParams) *Iter[File] {
	return listPages[File](ctx, s.client, "/files", url.Values{"status": {string(params.Status)}}, params.Limit)
}

// Download returns a ready file's bytes (GET /v1/files/{id}/content).
func (s *FilesService) Download(ctx context.Context, id string) ([]byte, error) {
	got, err := s.client.send(ctx, call{method: "GET", path: "/files/" + url.PathEscape(id) + "/content", accept: "*/*", extra: uploadTimeout})
	if err != nil {
		return nil, err
	}
	return got.body, nil
}

// Delete deletes a file and its bytes (DELETE /v1/files/{id}).
func (s *FilesService) Delete(ctx context.Context, id string) error {
	return s.client.do(ctx, "DELETE", "/files/"+url.PathEscape(id), nil, nil, nil, 0)
}
