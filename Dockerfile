# keywarden worker. TypeScript runs directly on Node 24 (type stripping): no build step.
FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
# V8 sizes its heap for the machine, not for the worker: left alone it lets each poll's garbage pile up to ~500 MB
# resident before collecting (a 5,000-key organization; the live set is ~40 MB). A small young generation and an
# old-space ceiling keep a poll cycle under 200 MB at little cost in time; `npm run bench -- ingest` runs the worker
# with exactly these flags. Raise them (docker run -e NODE_OPTIONS=...) only if a job dies with "heap out of memory".
ENV NODE_OPTIONS="--max-old-space-size=160 --max-semi-space-size=4"
COPY package.json package-lock.json ./
# The image already has Node 24; the `node` package would fetch a second copy, so its install script is skipped.
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force
COPY src ./src
COPY jobs ./jobs
COPY migrations ./migrations
USER node
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD node -e "fetch('http://127.0.0.1:9464/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "src/cli/index.ts"]
CMD ["worker"]
