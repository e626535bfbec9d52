// Package api serves Switchboard's HTTP side with Echo: the REST routes of
// the contract (SPEC 5), liveness, readiness and Prometheus metrics. It calls
// the same domain service as the socket handlers.
package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/service"
)

// Verifier checks member bearer tokens.
type Verifier interface {
	Verify(token string) (auth.Claims, error)
}

// Config holds the HTTP side's settings.
type Config struct {
	RequestTimeout time.Duration
	MaxBodyBytes   string // Echo body limit, e.g. "64K"
	PageSize       int
}

// Server is the Echo application.
type Server struct {
	cfg      Config
	echo     *echo.Echo
	svc      *service.Service
	verifier Verifier
	ready    func(ctx context.Context) error
	log      zerolog.Logger
}

// New builds the routes. ready reports why the node is not ready (nil when
// ready). gatherer serves /metrics.
func New(cfg Config, svc *service.Service, v Verifier, ready func(ctx context.Context) error, gatherer prometheus.Gatherer, log zerolog.Logger) *Server {
	if cfg.PageSize <= 0 {
		cfg.PageSize = 50
	}
	if cfg.MaxBodyBytes == "" {
		cfg.MaxBodyBytes = "64K"
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	s := &Server{cfg: cfg, echo: e, svc: svc, verifier: v, ready: ready, log: log}
	e.HTTPErrorHandler = s.errorHandler
	e.Use(middleware.Recover())
	e.Use(middleware.BodyLimit(cfg.MaxBodyBytes))

	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]any{"status": "ok"}) })
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{})))

	g := e.Group("/api")
	g.GET("/meetings/external/join/:token", s.linkInfo)
	g.POST("/meetings/external/register", s.register)
	m := g.Group("", s.member)
	m.GET("/meetings", s.listMeetings)
	m.GET("/meetings/:id", s.getMeeting)
	m.DELETE("/meetings/:id", s.deleteMeeting)
	m.POST("/presence/query", s.queryPresence)
	return s
}

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler { return s.echo }

// Echo returns the Echo instance, to mount more handlers (the Socket.IO
// server) on the same port.
func (s *Server) Echo() *echo.Echo { return s.echo }

var statusOf = map[string]int{
	service.CodeUnauthorized:   http.StatusUnauthorized,
	service.CodeForbidden:      http.StatusForbidden,
	service.CodeNotFound:       http.StatusNotFound,
	service.CodeInvalidPayload: http.StatusBadRequest,
	service.CodeConflict:       http.StatusConflict,
	service.CodeGone:           http.StatusGone,
	service.CodeRateLimited:    http.StatusTooManyRequests,
	service.CodeTooLarge:       http.StatusRequestEntityTooLarge,
	service.CodeUnavailable:    http.StatusServiceUnavailable,
	service.CodeInternal:       http.StatusInternalServerError,
}

// errorHandler renders every error as {error, code} with the fitting status.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code := service.CodeInvalidPayload
		switch he.Code {
		case http.StatusNotFound:
			code = service.CodeNotFound
		case http.StatusRequestEntityTooLarge:
			code = service.CodeTooLarge
		case http.StatusMethodNotAllowed:
			code = service.CodeNotFound
		case http.StatusUnauthorized:
			code = service.CodeUnauthorized
		case http.StatusInternalServerError:
			code = service.CodeInternal
		}
		msg := http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok {
			msg = m
		}
		_ = c.JSON(he.Code, map[string]any{"error": msg, "code": code})
		return
	}
	e := service.AsError(err)
	status := statusOf[e.Code]
	if status == 0 {
		status = http.StatusInternalServerError
	}
	ev := s.log.Info()
	if status >= 500 {
		ev = s.log.Error().Err(e.Err)
	}
	ev.Str("event", c.Request().Method+" "+c.Path()).Str("outcome", e.Code).Msg(e.Message)
	_ = c.JSON(status, map[string]any{"error": e.Message, "code": e.Code})
}

func (s *Server) ctx(c echo.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.Request().Context(), s.cfg.RequestTimeout)
}

// member authenticates a Bearer token.
func (s *Server) member(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header.Get("Authorization")
		token, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return service.Errorf(service.CodeUnauthorized, "Authorization: Bearer <token> is required")
		}
		claims, err := s.verifier.Verify(strings.TrimSpace(token))
		if err != nil {
			return service.Errorf(service.CodeUnauthorized, "invalid or expired token")
		}
		c.Set("actor", service.Actor{UserID: claims.UserID, DeviceID: claims.DeviceID, Name: claims.Name})
		return next(c)
	}
}

func actor(c echo.Context) service.Actor { a, _ := c.Get("actor").(service.Actor); return a }

func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := s.ctx(c)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		return c.JSON(http.StatusServiceUnavailable, map[string]any{"ready": false, "reason": err.Error()})
	}
	return c.JSON(http.StatusOK, map[string]any{"ready": true})
}

func (s *Server) linkInfo(c echo.Context) error {
	ctx, cancel := s.ctx(c)
	defer cancel()
	info, err := s.svc.LinkInfo(ctx, c.Param("token"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"meeting": info})
}

func (s *Server) register(c echo.Context) error {
	var r service.RegisterRequest
	if err := bind(c, &r); err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	reg, err := s.svc.Register(ctx, r)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, reg)
}

// bind decodes a JSON body; unknown fields are ignored, a malformed body or
// a wrong type is invalid_payload.
func bind(c echo.Context, into any) error {
	if err := (&echo.DefaultBinder{}).BindBody(c, into); err != nil {
		var he *echo.HTTPError
		if errors.As(err, &he) && he.Code == http.StatusRequestEntityTooLarge {
			return service.Errorf(service.CodeTooLarge, "request body too large")
		}
		return service.Errorf(service.CodeInvalidPayload, "request body must be a JSON object of the documented shape")
	}
	return nil
}

func (s *Server) listMeetings(c echo.Context) error {
	when := c.QueryParam("when")
	if when == "" {
		when = "upcoming"
	}
	if when != "upcoming" && when != "past" {
		return service.Errorf(service.CodeInvalidPayload, "when must be upcoming or past")
	}
	offset, err := intParam(c, "offset", 0, 0, 1<<20)
	if err != nil {
		return err
	}
	limit, err := intParam(c, "limit", s.cfg.PageSize, 1, 200)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	ms, err := s.svc.ListMeetings(ctx, actor(c), when == "upcoming", offset, limit+1)
	if err != nil {
		return err
	}
	resp := map[string]any{"meetings": ms, "offset": offset, "limit": limit}
	if len(ms) > limit {
		resp["meetings"] = ms[:limit]
		resp["next_offset"] = offset + limit
	}
	return c.JSON(http.StatusOK, resp)
}

func intParam(c echo.Context, name string, def, min, max int) (int, error) {
	v := c.QueryParam(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		return 0, service.Errorf(service.CodeInvalidPayload, "%s must be an integer from %d to %d", name, min, max)
	}
	return n, nil
}

func (s *Server) getMeeting(c echo.Context) error {
	ctx, cancel := s.ctx(c)
	defer cancel()
	m, err := s.svc.GetMeeting(ctx, actor(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"meeting": m})
}

func (s *Server) deleteMeeting(c echo.Context) error {
	ctx, cancel := s.ctx(c)
	defer cancel()
	if err := s.svc.DeleteMeeting(ctx, actor(c), c.Param("id")); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"deleted": true, "meeting_id": c.Param("id")})
}

func (s *Server) queryPresence(c echo.Context) error {
	var q service.PresenceQuery
	if err := bind(c, &q); err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	out, err := s.svc.QueryPresence(ctx, q)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}
