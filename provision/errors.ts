// One error for a refused REST request: an HTTP status plus the text Heketi would send.
export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'HttpError';
  }
}

export const badRequest = (m: string) => new HttpError(400, m);
export const notFound = (m = 'Id not found') => new HttpError(404, m);
export const conflict = (m: string) => new HttpError(409, m);
export const unprocessable = () => new HttpError(422, 'request unable to be parsed');
