// The api component: express on 127.0.0.1:$API_PORT (nginx routes /api/ here).
const express = require("express");

const app = express();
app.get("/api/", (req, res) => {
  res.json({ site: process.env.SITE_NAME, cache: Boolean(process.env.REDIS_URL) });
});
app.listen(Number(process.env.API_PORT), process.env.HOST || "127.0.0.1");
