// The seed's Express receiver (shared/seed/000_6b327df4f7105383.txt, "Endpoint Example
// (Node.js/Express)") as written there, with its host and credentials changed to this
// test's Herald's (read from the environment) and the port the test gives.
const express = require('express');
const axios = require('axios');
const app = express();
app.use(express.json());
app.post('/webhook', async (req, res) => {
const { event, application } = req.body;
// Respond immediately
res.status(200).json({ status: 'received' });
// Asynchronous processing
if (event === 'ProcessStepChange') {
try {
const response = await axios.get(
`${process.env.HERALD_URL}${application._self}`,
{
auth: {
username: process.env.HERALD_LOGIN,
password: process.env.HERALD_PASSWORD
}
}
);
await processApplicationChange(response.data);
} catch (error) {
console.error('Error processing webhook:', error);
}
}
});
async function processApplicationChange(application) {
// Your business logic
}
app.listen(Number(process.env.PORT), '127.0.0.1');
